/** Usage lines of `octopus trust` (apart from trust.ts, which loads the PKI libraries). */
export const TRUST_USAGE = `  octopus trust list [--json]           PLC (OPC UA server) certificates: trusted, and refused ones waiting for a decision
  octopus trust accept <thumbprint>     trust a PLC certificate (a unique prefix of 8+ hex digits will do)
  octopus trust reject <thumbprint>     distrust it (also never trusted on first use)`;
