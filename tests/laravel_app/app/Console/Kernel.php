<?php

namespace App\Console;

use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

class Kernel extends ConsoleKernel
{
    /**
     * Registered explicitly: there is no composer classmap to discover commands from.
     *
     * @var array
     */
    protected $commands = [
        Commands\DispatchCommand::class,
    ];
}
