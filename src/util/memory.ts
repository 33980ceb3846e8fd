// Peak resident memory per phase. Linux keeps the process's high-water mark (VmHWM in
// /proc/self/status) and resets it to the current RSS when "5" is written to
// /proc/self/clear_refs, so each phase can start its own window. Elsewhere (or where that file is
// not writable) the window cannot be reset and the figure is the process's lifetime peak.
import { readFileSync, writeFileSync } from 'node:fs';

/** Start a new peak-RSS window; false when the platform keeps only the lifetime peak. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident set size in bytes since the last reset (or since the process started). */
export function peakRssBytes(): number {
  try {
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
