import { parseArgs } from 'node:util';
import { AuditLog } from '../auth/audit.ts';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';
import { clientPkiDir } from '../drivers/opcua/client.ts';
import { ClientPki, type CertificateInfo } from '../drivers/opcua/pki.ts';
import { cliActor } from './admin.ts';
import { TRUST_USAGE } from './trust-usage.ts';

type Out = (line: string) => void;

function describe(c: CertificateInfo): string {
  return `${c.thumbprint}  ${c.subject}  valid ${c.notBefore.slice(0, 10)} … ${c.notAfter.slice(0, 10)}`;
}

/** `octopus trust …`: the OPC UA client's trust list under <data_dir>/pki/opcua-client. */
export async function trustCommand(args: string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, arg] = positionals;
  if (values.help || !sub) {
    out(`usage:\n${TRUST_USAGE}\n\noptions: --config file (its data_dir holds the trust list; OCTOPUS_DATA_DIR wins)`);
    return values.help ? 0 : EXIT_CONFIG;
  }
  const loaded = loadConfig(values.config);
  const pki = new ClientPki(clientPkiDir(loaded.dataDir));
  try {
    if (sub === 'list') {
      const state = pki.readState();
      const pinnedBy = (t: string) =>
        Object.entries(state.pins)
          .filter(([, p]) => p.thumbprint === t)
          .map(([endpoint, p]) => `${endpoint}${p.chamber ? ` (${p.chamber})` : ''}`);
      const rows = pki.list().map(({ status, info }) => ({
        status:
          status === 'rejected' && info.thumbprint in state.operator_rejected
            ? ('rejected by operator' as const)
            : status === 'rejected'
              ? ('refused, waiting for a decision' as const)
              : status,
        ...info,
        endpoints: pinnedBy(info.thumbprint),
        presentedBy: state.presented[info.thumbprint],
      }));
      if (values.json) {
        out(JSON.stringify(rows, null, 2));
        return 0;
      }
      if (rows.length === 0)
        out(
          `no PLC certificates in ${pki.dir} yet (they appear when a chamber uses security_mode Sign or SignAndEncrypt)`,
        );
      for (const r of rows) {
        out(`${r.status.padEnd(31)} ${describe(r)}`);
        for (const e of r.endpoints) out(`${''.padEnd(32)}pinned for ${e}`);
        if (r.presentedBy)
          out(
            `${''.padEnd(32)}presented by ${r.presentedBy.endpoint}${r.presentedBy.chamber ? ` (${r.presentedBy.chamber})` : ''} at ${r.presentedBy.at}`,
          );
      }
      return 0;
    }
    if ((sub === 'accept' || sub === 'reject') && arg) {
      const wanted = arg.toLowerCase().replace(/:/g, '');
      if (!/^[0-9a-f]{8,40}$/.test(wanted)) {
        err(
          `trust ${sub}: expected a certificate thumbprint (8 to 40 hex digits, as octopus trust list shows), got ${JSON.stringify(arg)}`,
        );
        return EXIT_CONFIG;
      }
      const hits = pki.list().filter((c) => c.info.thumbprint.startsWith(wanted));
      const unique = [...new Map(hits.map((h) => [h.info.thumbprint, h])).values()];
      if (unique.length !== 1) {
        const known = pki.list().map((c) => c.info.thumbprint.slice(0, 12));
        err(
          unique.length === 0
            ? `trust ${sub}: no certificate with thumbprint ${wanted} in ${pki.dir} (known: ${known.join(', ') || 'none'})`
            : `trust ${sub}: ${wanted} matches ${unique.length} certificates (${unique.map((u) => u.info.thumbprint).join(', ')}); give more digits`,
        );
        return EXIT_CONFIG;
      }
      const found = pki.find(unique[0]!.info.thumbprint)!;
      const t = found.info.thumbprint;
      const presented = pki.readState().presented[t];
      if (sub === 'accept') {
        await pki.trust(found.der);
        pki.updateState((s) => {
          delete s.operator_rejected[t];
        });
      } else {
        await pki.reject(found.der);
        pki.updateState((s) => {
          s.operator_rejected[t] = new Date().toISOString();
        });
      }
      AuditLog.forDataDir(loaded.dataDir).write({
        who: cliActor(),
        action: sub === 'accept' ? 'opcua_trust_accept' : 'opcua_trust_reject',
        what: t,
        detail: {
          subject: found.info.subject,
          not_after: found.info.notAfter,
          ...(presented ? { endpoint: presented.endpoint, chamber: presented.chamber } : {}),
        },
      });
      out(
        `${sub === 'accept' ? 'trusted' : 'rejected'} ${describe(found.info)}${sub === 'accept' ? '; chambers presenting it connect at their next attempt' : ''}`,
      );
      return 0;
    }
    err(`trust: unknown or incomplete subcommand ${JSON.stringify(positionals.join(' '))}\n\nusage:\n${TRUST_USAGE}`);
    return EXIT_CONFIG;
  } finally {
    await pki.dispose().catch(() => undefined);
  }
}
