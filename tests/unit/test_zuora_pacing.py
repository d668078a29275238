"""The request pace: however many threads ask, no second holds more starts than the limit allows."""

import threading
import time

from resources.zuora.pacing import RatePacer
from sandbox.zuora_server.traffic import peak_in_window


def test_threads_sharing_a_pacer_stay_under_the_limit_in_every_second() -> None:
    pacer = RatePacer(per_minute=1200)  # 20 a second
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            pacer.wait()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 32
    assert peak_in_window(sorted(starts), 1.0) <= 20
    assert time.monotonic() - began >= 31 / 20  # evenly spaced, not a burst and a wait


def test_peak_in_window_counts_a_sliding_second() -> None:
    assert peak_in_window([], 1.0) == 0
    assert peak_in_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4  # 0.5 .. 1.2; 0.0 and 1.0 are a second apart
    assert peak_in_window([0.0, 0.1, 0.2], 60.0) == 3
