// Header lookup over parsed fields, without building a Headers object per request.
import type { HeaderField } from "./head.ts";
import type { HeaderLookup } from "../routes.ts";

export class FieldHeaders implements HeaderLookup {
  constructor(private readonly fields: HeaderField[]) {}

  get(name: string): string | null {
    const lower = name.toLowerCase();
    let v: string | null = null;
    for (const f of this.fields) if (f.lower === lower) v = v === null ? f.value : `${v}, ${f.value}`;
    return v;
  }
}
