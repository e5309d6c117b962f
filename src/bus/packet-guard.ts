/**
 * Follows the MQTT framing of a byte stream (fixed header byte, "remaining length"
 * varint, body) and reports a packet announcing more than `maxBytes` as soon as its
 * header is read, before its body is buffered: the embedded broker then drops the
 * connection (Mosquitto's max_packet_size does the same).
 */
export class PacketGuard {
  /** Body bytes still to skip of the current packet. */
  private skip = 0;
  /** Header bytes of the packet being started (type byte and length varint so far). */
  private header: number[] = [];

  constructor(private readonly maxBytes: number) {}

  /** Feeds bytes; returns the announced size of the first packet over the limit, else undefined. */
  feed(buf: Buffer): number | undefined {
    let i = 0;
    while (i < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header.push(buf[i]!);
      i++;
      if (this.header.length === 1) continue;
      const last = this.header[this.header.length - 1]!;
      if (last & 0x80) {
        // More length bytes follow; the spec allows four.
        if (this.header.length > 5) return Number.POSITIVE_INFINITY;
        continue;
      }
      let length = 0;
      for (let k = this.header.length - 1; k >= 1; k--) length = length * 128 + (this.header[k]! & 0x7f);
      const total = length + this.header.length;
      this.header = [];
      if (total > this.maxBytes) return total;
      this.skip = length;
    }
    return undefined;
  }
}
