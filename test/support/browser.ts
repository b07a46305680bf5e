import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium, driven by playwright-core (which never downloads a browser of its own), on a
 * fresh profile, with nothing that reaches beyond this machine.
 */

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** A new tab that records the Content-Security-Policy violations it reports. */
  page(): Promise<Page & { cspViolations: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(downloads: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    downloadsPath: downloads,
    viewport: { width: 1280, height: 860 },
  });
  return {
    context,
    async page() {
      const page = (await context.newPage()) as Page & { cspViolations: string[] };
      page.cspViolations = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) page.cspViolations.push(m.text());
      });
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
}

/**
 * axe-core's verdict on the page as it is now: the serious and critical violations. axe runs
 * through the DevTools protocol (page.evaluate), which the page's CSP does not govern, so the page
 * under test keeps its real policy.
 */
export async function seriousA11yViolations(page: Page, axeSource: string): Promise<string[]> {
  await page.evaluate(axeSource);
  // A string, so it runs in the page; the test code has no DOM types.
  const result = (await page.evaluate("window.axe.run(document, { resultTypes: ['violations'] })")) as AxeResult;
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
}
