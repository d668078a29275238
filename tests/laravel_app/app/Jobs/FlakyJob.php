<?php

namespace App\Jobs;

use App\Jobs\Concerns\RunsFlaky;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/**
 * Fails with RuntimeException("Order {id} failed: flaky") unless the succeed switch is on.
 */
class FlakyJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels, RunsFlaky;

    public function __construct(int $orderId, string $label = '', ?int $tries = 1)
    {
        $this->orderId = $orderId;
        $this->label = $label;
        $this->tries = $tries;
    }
}
