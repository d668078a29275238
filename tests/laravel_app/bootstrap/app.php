<?php

$app = new Illuminate\Foundation\Application(
    $_ENV['APP_BASE_PATH'] ?? dirname(__DIR__)
);

/*
 * One checkout serves many concurrent tests, so each test points the app at its own
 * storage directory (logs, file cache, compiled views). Laravel 8 has no env hook for
 * this (LARAVEL_STORAGE_PATH arrived in later versions), hence the explicit call.
 */
$storage = $_SERVER['LARAVEL_STORAGE_PATH'] ?? getenv('LARAVEL_STORAGE_PATH');
if (is_string($storage) && $storage !== '') {
    $app->useStoragePath($storage);
}

$app->singleton(
    Illuminate\Contracts\Console\Kernel::class,
    App\Console\Kernel::class
);

$app->singleton(
    Illuminate\Contracts\Debug\ExceptionHandler::class,
    App\Exceptions\Handler::class
);

return $app;
