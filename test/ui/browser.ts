/** The browser of the UI tests: Debian's chromium driven by playwright-core (never a downloaded browser). */
import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ROOT } from '../support/shared.js';

export const CHROMIUM = process.env.KERF_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is absent (apt-get install chromium)`;
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** A page with a phone- or desk-sized viewport that records console errors, page errors and every request. */
export async function openPage(b: Browser, size: { width: number; height: number } = { width: 1280, height: 900 }): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const ctx = await b.newContext({ viewport: size });
  const page = await ctx.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  return { page, errors, requests };
}

/** Save a screenshot to docs/img/ when KERF_SCREENSHOTS=1 (how docs/dashboard.md's pictures are made). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.KERF_SCREENSHOTS !== '1') return;
  const dir = join(ROOT, 'docs', 'img');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name), fullPage: true });
}
