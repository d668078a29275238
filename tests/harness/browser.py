"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on a Dagster webserver.

Never `playwright install`: the browser is the system package scripts/install-system-deps.sh
installs. Playwright starts it detached, in its own process group; the group is noted at launch
and must be gone at teardown, killed if closing the browser did not end it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.harness.processes import descendant_groups, end_group, group_alive, wait_until

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 900}
# The webserver asks a first visitor on localhost to join Dagster's community, in a modal dialog
# that covers the page a second after it loads; "Skip" stores this key. A returning user's browser has it.
SKIP_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"


@dataclass
class Ui:
    page: Page
    shots: Path
    images: Path | None = None  # where the documentation's screenshots are refreshed, when they are

    def open(self, path: str) -> None:
        self.page.goto(path)

    def shot(self, name: str, image: str | None = None) -> Path:
        """The page as it is now, saved as `name`; also as the documentation's `image` when `images` is set."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path, animations="disabled")  # transitions finished, e.g. a secret_box being ticked
        if image and self.images is not None:
            shutil.copyfile(path, self.images / f"{image}.png")
        return path

    @contextmanager
    def larger(self, width: int, height: int) -> Iterator[None]:
        """A larger window for a page whose tables do not fit the usual one, screenshots included."""
        self.page.set_viewport_size({"width": width, "height": height})
        try:
            yield
        finally:
            self.page.set_viewport_size(VIEWPORT)

    @contextmanager
    def step(self, name: str, image: str | None = None) -> Iterator[None]:
        """One step of a user's visit: its screenshot saved as it ends (and as `image`, see `shot`), or as it
        fails (named in the error; never as `image`)."""
        try:
            yield
        except BaseException as exc:
            try:
                exc.add_note(f"screenshot of the page as the step {name!r} failed: {self.shot(f'{name}-FAILED')}")
            except Exception as shot_error:  # the page itself is gone: keep the step's own error
                exc.add_note(f"no screenshot of the failed step {name!r}: {shot_error}")
            raise
        self.shot(name, image)


@contextmanager
def headless_chromium(base_url: str, shots: Path, profile: Path, images: Path | None = None) -> Iterator[Ui]:
    """A fresh browser profile on `base_url`; screenshots go to `shots` (and the named ones to `images`),
    Chromium's own files under `profile`."""
    shots.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_CONFIG_HOME": str(profile / "config"), "XDG_CACHE_HOME": str(profile / "cache")}
    with sync_playwright() as playwright:
        before = descendant_groups()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, env=env)
        groups = descendant_groups() - before
        assert groups, "Chromium did not start in a process group of its own"
        try:
            context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
            context.set_default_timeout(30_000)
            context.add_init_script(SKIP_COMMUNITY_DIALOG)
            yield Ui(context.new_page(), shots, images)
        finally:
            try:
                browser.close()
            finally:
                for pgid in groups:
                    end_group(pgid, grace=5)
                wait_until(lambda: not any(group_alive(pgid) for pgid in groups), timeout=15,
                           what="Chromium's processes to end")
