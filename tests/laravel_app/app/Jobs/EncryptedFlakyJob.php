<?php

namespace App\Jobs;

use App\Jobs\Concerns\RunsFlaky;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldBeEncrypted;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/**
 * Like FlakyJob, but its payload's data.command is Crypt::encrypt(serialize($job))
 * (base64 JSON {iv, value, mac}) under APP_KEY instead of a plain "O:..." string.
 */
class EncryptedFlakyJob implements ShouldQueue, ShouldBeEncrypted
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels, RunsFlaky;

    public function __construct(int $orderId, string $label = '', ?int $tries = 1)
    {
        $this->orderId = $orderId;
        $this->label = $label;
        $this->tries = $tries;
    }
}
