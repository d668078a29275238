<?php

namespace App\Jobs\Concerns;

use RuntimeException;

/**
 * Shared body of the harness jobs: log one JSON line per run, then fail unless the
 * succeed switch is on.
 *
 * Run log:        file named by env HARNESS_RUN_LOG (no log when unset).
 * Succeed switch: env HARNESS_SUCCEED=1 in the worker's environment, or the file named
 *                 by env HARNESS_SUCCEED_FILE exists (checked on every run, so a test
 *                 can flip it while a worker is running).
 */
trait RunsFlaky
{
    /** @var int */
    public $orderId;

    /** @var string */
    public $label;

    /**
     * Max attempts; null lets the worker's --tries decide.
     *
     * @var int|null
     */
    public $tries = 1;

    /**
     * Seconds before a released attempt becomes available again; null = immediately.
     *
     * @var int|null
     */
    public $backoff = null;

    public function handle(): void
    {
        $succeed = static::succeedSwitchOn();

        $this->recordRun($succeed);

        if (! $succeed) {
            throw new RuntimeException("Order {$this->orderId} failed: flaky");
        }
    }

    public static function succeedSwitchOn(): bool
    {
        if (getenv('HARNESS_SUCCEED') === '1') {
            return true;
        }

        $flag = getenv('HARNESS_SUCCEED_FILE');

        return is_string($flag) && $flag !== '' && file_exists($flag);
    }

    protected function recordRun(bool $succeed): void
    {
        $path = getenv('HARNESS_RUN_LOG');

        if (! is_string($path) || $path === '') {
            return;
        }

        $line = json_encode([
            'uuid' => $this->job ? $this->job->uuid() : null,
            'job_id' => $this->job ? $this->job->getJobId() : null,
            'class' => static::class,
            'order_id' => $this->orderId,
            'label' => $this->label,
            'attempts' => $this->attempts(),
            'queue' => $this->job ? $this->job->getQueue() : null,
            'connection' => $this->job ? $this->job->getConnectionName() : null,
            'succeeded' => $succeed,
            'pid' => getmypid(),
            'at' => microtime(true),
        ], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);

        file_put_contents($path, $line."\n", FILE_APPEND | LOCK_EX);
    }
}
