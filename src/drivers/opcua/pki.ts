/**
 * The OPC UA client's PKI folder (node-opcua-certificate-manager layout, the only module
 * that imports it): `own/` (Octopus's client certificate), `trusted/certs/` (PLC
 * certificates the operator or trust-on-first-use accepted), `rejected/` (PLC
 * certificates refused, waiting for a decision). Next to them, `server-trust.json`
 * remembers which certificate each endpoint presented last (its pin), which endpoint
 * presented a refused certificate, and which certificates an operator rejected
 * explicitly (those are never trusted on first use).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { z } from 'zod';

export interface CertificateInfo {
  /** SHA-1 of the DER bytes, lower-case hex: the OPC UA thumbprint. */
  thumbprint: string;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** subjectAltName (the server's application URI and host names). */
  altNames: string;
}

export type StoreStatus = 'trusted' | 'rejected' | 'unknown';

const Pin = z.object({
  thumbprint: z.string(),
  subject: z.string(),
  chamber: z.string().optional(),
  since: z.string(),
});
const Presented = z.object({ endpoint: z.string(), chamber: z.string().optional(), at: z.string() });
export const TrustState = z.object({
  /** endpoint → the certificate it presented on its last trusted connection. */
  pins: z.record(z.string(), Pin).default({}),
  /** thumbprint → where a refused certificate was last presented. */
  presented: z.record(z.string(), Presented).default({}),
  /** thumbprint → when an operator rejected it (`octopus trust reject`). */
  operator_rejected: z.record(z.string(), z.string()).default({}),
});
export type TrustState = z.infer<typeof TrustState>;

/** The first certificate of a DER chain (servers may send theirs followed by its issuers). */
export function firstCertificate(der: Buffer): Buffer {
  if (der.length < 2 || der[0] !== 0x30) throw new Error('server certificate is not a DER SEQUENCE');
  const lenByte = der[1]!;
  if (lenByte < 0x80) return der.subarray(0, 2 + lenByte);
  const n = lenByte & 0x7f;
  if (n < 1 || n > 4 || der.length < 2 + n) throw new Error('server certificate has a malformed DER length');
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return der.subarray(0, 2 + n + len);
}

export function certificateInfo(der: Buffer): CertificateInfo {
  const x = new X509Certificate(der);
  return {
    thumbprint: x.fingerprint.replace(/:/g, '').toLowerCase(),
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    altNames: x.subjectAltName ?? '',
  };
}

function readCertificates(dir: string): Array<{ der: Buffer; info: CertificateInfo }> {
  if (!existsSync(dir)) return [];
  const out: Array<{ der: Buffer; info: CertificateInfo }> = [];
  for (const name of readdirSync(dir)) {
    if (!/\.(pem|der|crt|cer)$/i.test(name)) continue;
    try {
      const raw = readFileSync(join(dir, name));
      const x = new X509Certificate(raw);
      out.push({ der: x.raw, info: certificateInfo(x.raw) });
    } catch {
      // Not a certificate (a stray file): not ours to judge.
    }
  }
  return out;
}

/** The client PKI folder: trust store operations and the trust state file. */
export class ClientPki {
  readonly manager: OPCUACertificateManager;
  private initialized?: Promise<void>;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    // Unknown certificates are never accepted by node-opcua itself: Octopus decides (trust.ts).
    this.manager = new OPCUACertificateManager({
      rootFolder: dir,
      automaticallyAcceptUnknownCertificate: false,
      disableFileWatchers: true,
    });
  }

  /** Creates the folders and Octopus's own client certificate on first use. */
  init(): Promise<void> {
    this.initialized ??= this.manager.initialize();
    return this.initialized;
  }

  private get trustedDir(): string {
    return join(this.dir, 'trusted', 'certs');
  }
  private get rejectedDir(): string {
    return join(this.dir, 'rejected');
  }

  /** Reads the folders afresh (another process, e.g. `octopus trust`, may have changed them). */
  status(thumbprint: string): StoreStatus {
    if (readCertificates(this.trustedDir).some((c) => c.info.thumbprint === thumbprint)) return 'trusted';
    if (readCertificates(this.rejectedDir).some((c) => c.info.thumbprint === thumbprint)) return 'rejected';
    return 'unknown';
  }

  list(): Array<{ status: 'trusted' | 'rejected'; info: CertificateInfo }> {
    return [
      ...readCertificates(this.trustedDir).map((c) => ({ status: 'trusted' as const, info: c.info })),
      ...readCertificates(this.rejectedDir).map((c) => ({ status: 'rejected' as const, info: c.info })),
    ];
  }

  find(thumbprint: string): { status: 'trusted' | 'rejected'; der: Buffer; info: CertificateInfo } | undefined {
    const t = thumbprint.toLowerCase().replace(/[^0-9a-f]/g, '');
    for (const [status, dir] of [
      ['trusted', this.trustedDir],
      ['rejected', this.rejectedDir],
    ] as const) {
      const hit = readCertificates(dir).find((c) => c.info.thumbprint === t);
      if (hit) return { status, ...hit };
    }
    return undefined;
  }

  async trust(der: Buffer): Promise<void> {
    await this.init();
    await this.manager.reloadCertificates();
    await this.manager.trustCertificate(der);
  }

  async reject(der: Buffer): Promise<void> {
    await this.init();
    await this.manager.reloadCertificates();
    await this.manager.rejectCertificate(der);
  }

  /** Refreshes node-opcua's in-memory index from the folders before a connection uses it. */
  async reload(): Promise<void> {
    await this.init();
    await this.manager.reloadCertificates();
  }

  private get stateFile(): string {
    return join(this.dir, 'server-trust.json');
  }

  readState(): TrustState {
    if (!existsSync(this.stateFile)) return TrustState.parse({});
    try {
      return TrustState.parse(JSON.parse(readFileSync(this.stateFile, 'utf8')));
    } catch (err) {
      throw new Error(`${this.stateFile}: unreadable trust state (${(err as Error).message}); fix or remove it`);
    }
  }

  /** Read-modify-write of the state file, synchronous so that drivers of one process do not interleave. */
  updateState(change: (s: TrustState) => void): TrustState {
    const s = this.readState();
    change(s);
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.stateFile);
    return s;
  }

  async dispose(): Promise<void> {
    if (this.initialized) await this.initialized.catch(() => undefined);
    await this.manager.dispose();
  }
}
