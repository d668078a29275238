<?php

/*
 * There is no composer vendor dir: Laravel 8.83 and its dependencies (Symfony 5.4,
 * Monolog, Carbon, ...) come from Debian packages under /usr/share/php, whose
 * Illuminate/autoload.php pulls in every dependency's autoloader. Only the
 * application's own App\ namespace needs a PSR-4 loader here.
 */

$debianAutoload = getenv('LARAVEL_AUTOLOAD') ?: '/usr/share/php/Illuminate/autoload.php';

if (! is_file($debianAutoload)) {
    fwrite(STDERR, "Laravel framework autoloader not found at {$debianAutoload}: "
        ."install php-laravel-framework (scripts/install-system-deps.sh)\n");
    exit(70);
}

require_once $debianAutoload;

spl_autoload_register(function (string $class): void {
    $prefixes = [
        'App\\' => __DIR__.'/../app/',
        'Database\\Seeders\\' => __DIR__.'/../database/seeders/',
    ];

    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            continue;
        }

        $file = $dir.str_replace('\\', '/', substr($class, strlen($prefix))).'.php';

        if (is_file($file)) {
            require $file;
        }
    }
});
