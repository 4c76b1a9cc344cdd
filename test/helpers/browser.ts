// A real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, on a fresh
// profile in a temp directory that close() removes. Nothing is downloaded: playwright-core only
// drives the installed browser.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Opens Chromium; `netns` runs it inside that network namespace (through `ip netns exec`, which
 * execs it, so the pipes playwright-core talks over are inherited), to reach a lab node's loopback. */
export async function launchChromium(viewport = { width: 1280, height: 900 }, netns?: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "fulcrum-chromium-"));
  let executablePath = CHROMIUM;
  if (netns !== undefined) {
    executablePath = join(profile, "chromium-in-netns");
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${netns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  }
  let context: BrowserContext;
  try {
    // The profile is the user-data-dir (playwright-core takes it here, not as a flag).
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      viewport,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context, page,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
