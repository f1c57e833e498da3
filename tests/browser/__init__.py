"""A real browser (headless Chromium, driven by selenium) in a voice call with the emulator."""
