// Debian's Chromium, driven by playwright-core (browser downloads are not available here), and a
// tiny static server for the pages it loads.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

/** Content types of the files the browser tests serve. */
export const CONTENT_TYPES = {
  '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json',
};

/** Headless Chromium without background networking (the machine's network is closed). */
export function launchChromium() {
  return chromium.launch({
    executablePath: execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** An HTTP server on a free loopback port running `handler`; resolves once it listens. */
export async function serve(handler) {
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
