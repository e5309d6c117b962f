/**
 * Whether Octopus talks to the PLC that presents a given server certificate (Sign and
 * SignAndEncrypt only; security mode None has no certificate and authenticates nothing).
 *
 * - A certificate in the trust list (`trusted/`) is accepted, whichever chamber it serves.
 * - One an operator rejected (`octopus trust reject`) is refused.
 * - `pinned` (the default): any other certificate is refused and kept in `rejected/`
 *   until an operator accepts it (`octopus trust accept <thumbprint>`).
 * - `tofu`: the first certificate an endpoint ever presents is trusted and pinned; a
 *   different one later (a regenerated key, or another machine on that address) is
 *   refused like in `pinned` mode.
 * A refusal names the endpoint, the presented thumbprint, subject and validity, and the
 * previously pinned thumbprint when the certificate changed.
 */
import type { CertificateInfo, ClientPki, StoreStatus, TrustState } from './pki.ts';
import { certificateInfo, firstCertificate } from './pki.ts';

export type ServerTrust = 'pinned' | 'tofu';

export type TrustDecision =
  | { accept: true; trustNow: boolean; firstUse: boolean }
  | { accept: false; why: 'unknown' | 'changed' | 'rejected'; pinned?: string };

/** The decision alone, from what the store and the state file say (pure). */
export function decideTrust(input: {
  mode: ServerTrust;
  thumbprint: string;
  store: StoreStatus;
  /** The thumbprint this endpoint presented on its last trusted connection. */
  pinned?: string;
  operatorRejected: boolean;
}): TrustDecision {
  const { mode, thumbprint, store, pinned, operatorRejected } = input;
  if (operatorRejected) return { accept: false, why: 'rejected', pinned };
  if (store === 'trusted') return { accept: true, trustNow: false, firstUse: false };
  const changed = pinned !== undefined && pinned !== thumbprint;
  if (mode === 'tofu' && pinned === undefined) return { accept: true, trustNow: true, firstUse: true };
  // tofu with the same pin: the certificate was trusted here before and is still unrejected.
  if (mode === 'tofu' && pinned === thumbprint) return { accept: true, trustNow: true, firstUse: false };
  return { accept: false, why: changed ? 'changed' : 'unknown', pinned };
}

export class UntrustedServerCertificate extends Error {
  constructor(
    readonly endpoint: string,
    readonly certificate: CertificateInfo,
    readonly why: 'unknown' | 'changed' | 'rejected' | 'outside its validity',
    readonly pinned?: string,
  ) {
    const c = certificate;
    const desc = `${c.thumbprint} (subject ${c.subject}; valid ${c.notBefore.slice(0, 10)} to ${c.notAfter.slice(0, 10)})`;
    const head =
      why === 'changed'
        ? `server certificate of ${endpoint} changed: it now presents ${desc}, pinned was ${pinned}; refused`
        : why === 'rejected'
          ? `server certificate of ${endpoint} ${desc} was rejected by an operator; refused`
          : why === 'outside its validity'
            ? `server certificate of ${endpoint} ${desc} is trusted but outside its validity period; refused`
            : `server certificate of ${endpoint} ${desc} is not trusted; refused`;
    const advice =
      why === 'rejected' || why === 'outside its validity'
        ? ''
        : ` — if it is the PLC's, run: octopus trust accept ${c.thumbprint}`;
    super(`${head}${advice}`);
    this.name = 'UntrustedServerCertificate';
  }
}

/**
 * Applies the decision for `serverCertificate` presented at `endpoint`: trusts it on first
 * use, records pins and refusals, and throws UntrustedServerCertificate when refused.
 * Returns the certificate's details when accepted.
 */
export async function checkServerTrust(opts: {
  pki: ClientPki;
  endpoint: string;
  chamber?: string;
  mode: ServerTrust;
  serverCertificate: Buffer;
}): Promise<CertificateInfo> {
  const der = firstCertificate(opts.serverCertificate);
  const info = certificateInfo(der);
  const state: TrustState = opts.pki.readState();
  const decision = decideTrust({
    mode: opts.mode,
    thumbprint: info.thumbprint,
    store: opts.pki.status(info.thumbprint),
    pinned: state.pins[opts.endpoint]?.thumbprint,
    operatorRejected: info.thumbprint in state.operator_rejected,
  });
  const now = new Date().toISOString();
  if (!decision.accept) {
    // Keep it in rejected/ so that `octopus trust list` shows it with where it came from.
    if (opts.pki.status(info.thumbprint) !== 'rejected') await opts.pki.reject(der);
    // Recorded once per endpoint (retries every few seconds do not rewrite the file).
    if (state.presented[info.thumbprint]?.endpoint !== opts.endpoint) {
      opts.pki.updateState((s) => {
        s.presented[info.thumbprint] = {
          endpoint: opts.endpoint,
          ...(opts.chamber ? { chamber: opts.chamber } : {}),
          at: now,
        };
      });
    }
    throw new UntrustedServerCertificate(opts.endpoint, info, decision.why, decision.pinned);
  }
  const t = Date.now();
  if (t < Date.parse(info.notBefore) || t > Date.parse(info.notAfter))
    throw new UntrustedServerCertificate(opts.endpoint, info, 'outside its validity');
  if (decision.trustNow) await opts.pki.trust(der);
  const pin = state.pins[opts.endpoint];
  if (pin?.thumbprint !== info.thumbprint || state.presented[info.thumbprint]) {
    opts.pki.updateState((s) => {
      s.pins[opts.endpoint] = {
        thumbprint: info.thumbprint,
        subject: info.subject,
        ...(opts.chamber ? { chamber: opts.chamber } : {}),
        since: now,
      };
      delete s.presented[info.thumbprint];
    });
  }
  return info;
}

/**
 * Trusts and pins the certificate of an OPC UA server Octopus runs itself (the simulator
 * serving a loopback chamber), so that `npm start` with Sign/SignAndEncrypt needs no extra
 * step. Never used for a server Octopus does not run.
 */
export async function trustOwnServer(
  pki: ClientPki,
  endpoint: string,
  chamber: string,
  certificate: Buffer,
): Promise<CertificateInfo> {
  const der = firstCertificate(certificate);
  const info = certificateInfo(der);
  if (pki.status(info.thumbprint) !== 'trusted') await pki.trust(der);
  pki.updateState((s) => {
    s.pins[endpoint] = { thumbprint: info.thumbprint, subject: info.subject, chamber, since: new Date().toISOString() };
    delete s.presented[info.thumbprint];
    delete s.operator_rejected[info.thumbprint];
  });
  return info;
}
