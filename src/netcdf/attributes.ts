/**
 * Adds or replaces attributes of a finished classic / 64-bit offset file without moving
 * its data: the header is rewritten in place, into the room reserved before the first
 * variable's data (the writer reserves 64 KiB). Used at run stop for the fidelity
 * attributes of the controlled variables.
 *
 * Safety: nothing is written unless the new header fits before the data and parses back
 * to the same layout (same dimensions, variables, types and data offsets). The new
 * header is then written with one positional write and fsynced: a process killed at any
 * moment leaves either the old or the new header, both valid, and the data untouched
 * (the same guarantee as the writer's own header rewrite at every flush).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { normaliseAttr, type AttrInput, type NcHeader } from './format.ts';
import { HeaderTruncatedError, dataStartOf, encodeHeader, parseHeader } from './header.ts';

export class HeaderRoomError extends Error {}

/** `changes`: variable name → attributes to set (added, or replaced in place when they exist). */
export function setVariableAttributes(
  path: string,
  changes: Record<string, Record<string, AttrInput>>,
): { headerBytes: number; room: number } {
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    let header: NcHeader | undefined;
    for (let n = 64 * 1024; !header; n *= 4) {
      const buf = Buffer.alloc(Math.min(n, size));
      readSync(fd, buf, 0, buf.length, 0);
      try {
        header = parseHeader(buf).header;
      } catch (e) {
        if (!(e instanceof HeaderTruncatedError) || buf.length >= size)
          throw new Error(`${path}: ${(e as Error).message}`);
      }
    }
    if (header.numrecs === 0xffffffff)
      throw new Error(`${path}: still being written (streaming numrecs); not changing its header`);
    for (const [name, attrs] of Object.entries(changes)) {
      const v = header.vars.find((x) => x.name === name);
      if (!v) throw new Error(`${path}: no variable "${name}"`);
      for (const [k, input] of Object.entries(attrs)) {
        const a = normaliseAttr(k, input, v.type);
        const i = v.attrs.findIndex((x) => x.name === k);
        if (i >= 0) v.attrs[i] = a;
        else v.attrs.push(a);
      }
    }
    const room = dataStartOf(header);
    const head = encodeHeader(header);
    if (head.length > room)
      throw new HeaderRoomError(
        `${path}: the header with the new attributes needs ${head.length} bytes, only ${room} are reserved before the data; attributes not written`,
      );
    const back = parseHeader(head).header;
    const same =
      back.vars.length === header.vars.length &&
      back.numrecs === header.numrecs &&
      back.vars.every((x, i) => {
        const y = header.vars[i]!;
        return (
          x.name === y.name &&
          x.type === y.type &&
          x.begin === y.begin &&
          x.vsize === y.vsize &&
          x.dimIds.join() === y.dimIds.join()
        );
      });
    if (!same) throw new Error(`${path}: the re-encoded header does not keep the data layout; attributes not written`);
    let done = 0;
    while (done < head.length) done += writeSync(fd, head, done, head.length - done, done);
    fsyncSync(fd);
    return { headerBytes: head.length, room };
  } finally {
    closeSync(fd);
  }
}
