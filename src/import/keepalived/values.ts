// Reading keepalived's values (<BOOL>, <TIMER>, integers) off statements, and the list of what the
// translation could not carry over, each with the file and line it came from.
import { formatDuration } from "../../config/duration.ts";
import type { Origin, Statement } from "./reader.ts";

/** One thing left out or changed: `file:line: subject: message`. */
export interface Untranslated extends Origin {
  subject: string;
  message: string;
}

export class Untranslatable {
  readonly items: Untranslated[] = [];

  add(at: Origin, subject: string, message: string): void {
    this.items.push({ file: at.file, line: at.line, subject, message });
  }

  /** A keyword Fulcrum has nothing for. */
  keyword(s: Statement, subject: string, why = "has no Fulcrum equivalent"): void {
    this.add(s, subject, `${[s.keyword, ...s.args].join(" ")} ${why}`);
  }
}

export function formatUntranslated(u: Untranslated): string {
  return `${u.file}:${u.line}: ${u.subject}: ${u.message}`;
}

/** keepalived's <BOOL>: on/true/yes or off/false/no; a keyword alone means true. */
export function bool(s: Statement, index = 0): boolean | null {
  const word = s.args[index];
  if (word === undefined) return true;
  if (["on", "true", "yes"].includes(word)) return true;
  if (["off", "false", "no"].includes(word)) return false;
  return null;
}

/** keepalived's <TIMER>: seconds, fractions allowed; in milliseconds (null if not a number). */
export function timerMs(word: string | undefined): number | null {
  if (word === undefined || !/^\d+(\.\d+)?$/.test(word)) return null;
  return Math.round(Number(word) * 1000);
}

export function integerOf(word: string | undefined): number | null {
  return word !== undefined && /^-?\d+$/.test(word) ? Number(word) : null;
}

/** A number of seconds as Fulcrum writes durations ("2s", "1s500ms"). */
export function duration(ms: number): string {
  return formatDuration(ms);
}

/** The last statement named `keyword` in a block (keepalived keeps the last value given). */
export function last(block: Statement[] | null, ...keywords: string[]): Statement | undefined {
  return block?.findLast((s) => keywords.includes(s.keyword));
}

/** Every word of a value block, e.g. `group { VI_1 VI_2 }` (keepalived reads them all). */
export function blockWords(s: Statement): string[] {
  return (s.block ?? []).flatMap((child) => [child.keyword, ...child.args]);
}

/** How a statement reads in a message. */
export function written(s: Statement): string {
  return [s.keyword, ...s.args].join(" ");
}
