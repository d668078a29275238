<?php

namespace App\Console\Commands;

use App\Jobs\EncryptedFlakyJob;
use App\Jobs\FlakyJob;
use App\Jobs\FlakyUntilJob;
use Illuminate\Console\Command;
use Illuminate\Contracts\Bus\Dispatcher;
use Illuminate\Queue\Queue;

/**
 * Pushes harness jobs through the normal Bus dispatcher (so payloads are byte-for-byte
 * what a real app produces) and prints one JSON line per pushed job with its uuid.
 */
class DispatchCommand extends Command
{
    protected $signature = 'harness:dispatch
        {--count=1 : Number of jobs}
        {--queue=default : Queue name}
        {--connection= : Queue connection (default: queue.default / QUEUE_CONNECTION)}
        {--job=flaky : flaky | until | encrypted}
        {--order=1 : Order id of the first job; the next ones count up}
        {--label= : Free text stored on each job}
        {--tries=1 : $tries of each job; "none" leaves it null so the worker --tries applies}
        {--until=60 : until jobs: retryUntil = dispatch time + this many seconds}
        {--backoff= : $backoff seconds between attempts (default: none)}';

    protected $description = 'Dispatch fleetops harness jobs';

    private const JOBS = [
        'flaky' => FlakyJob::class,
        'until' => FlakyUntilJob::class,
        'encrypted' => EncryptedFlakyJob::class,
    ];

    public function handle(Dispatcher $bus): int
    {
        $kind = (string) $this->option('job');

        if (! isset(self::JOBS[$kind])) {
            $this->error("Unknown --job={$kind}; expected one of: ".implode(', ', array_keys(self::JOBS)));

            return 2;
        }

        $connection = $this->option('connection') ?: config('queue.default');
        $queue = (string) $this->option('queue');
        $uuids = [];

        // The uuid is generated inside the payload builder; a payload hook is the only
        // public place to see it. The hook adds no keys (returns []).
        Queue::createPayloadUsing(function ($conn, $q, array $payload) use (&$uuids) {
            $uuids[] = $payload['uuid'] ?? null;

            return [];
        });

        try {
            $first = (int) $this->option('order');

            for ($i = 0; $i < (int) $this->option('count'); $i++) {
                $job = $this->makeJob($kind, $first + $i);
                $job->onConnection($connection)->onQueue($queue);
                $bus->dispatch($job);

                $this->line(json_encode([
                    'uuid' => end($uuids) ?: null,
                    'job' => $kind,
                    'class' => get_class($job),
                    'order_id' => $first + $i,
                    'connection' => $connection,
                    'queue' => $queue,
                ], JSON_UNESCAPED_SLASHES));
            }
        } finally {
            Queue::createPayloadUsing(null);
        }

        return 0;
    }

    private function makeJob(string $kind, int $orderId): object
    {
        $label = (string) $this->option('label');
        $tries = $this->option('tries') === 'none' ? null : (int) $this->option('tries');

        $class = self::JOBS[$kind];
        $job = $kind === 'until'
            ? new FlakyUntilJob($orderId, $label, $tries, (int) $this->option('until'))
            : new $class($orderId, $label, $tries);

        if ($this->option('backoff') !== null && $this->option('backoff') !== '') {
            $job->backoff = (int) $this->option('backoff');
        }

        return $job;
    }
}
