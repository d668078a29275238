<?php

namespace App\Jobs;

use App\Jobs\Concerns\RunsFlaky;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/**
 * Like FlakyJob, but time-limited: Laravel ignores $tries while now <= retryUntil and
 * releases the failed job again (after $backoff seconds), failing it for good only once
 * the deadline has passed. retryUntil() is evaluated when the payload is built, so the
 * payload's "retryUntil" is dispatch time + $untilSeconds.
 */
class FlakyUntilJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels, RunsFlaky;

    /** @var int */
    public $untilSeconds;

    public function __construct(int $orderId, string $label = '', ?int $tries = 1, int $untilSeconds = 60)
    {
        $this->orderId = $orderId;
        $this->label = $label;
        $this->tries = $tries;
        $this->untilSeconds = $untilSeconds;
    }

    public function retryUntil(): \DateTimeInterface
    {
        return now()->addSeconds($this->untilSeconds);
    }
}
