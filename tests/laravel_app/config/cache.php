<?php

return [

    /*
     * "array" by default: a file cache would be shared by every test using this
     * checkout (queue:restart signals live in the cache).
     */
    'default' => env('CACHE_DRIVER', 'array'),

    'stores' => [

        'array' => [
            'driver' => 'array',
            'serialize' => false,
        ],

        'file' => [
            'driver' => 'file',
            'path' => storage_path('framework/cache/data'),
        ],

        'database' => [
            'driver' => 'database',
            'table' => 'cache',
            'connection' => null,
            'lock_connection' => null,
        ],

        'redis' => [
            'driver' => 'redis',
            'connection' => 'cache',
            'lock_connection' => 'default',
        ],

    ],

    'prefix' => env('CACHE_PREFIX', 'fleetops_test_cache'),

];
