/**
 * Profile node ids as text: `nsu=<namespace URI>;s=<id>` (preferred: survives servers that
 * reorder their namespaces), `ns=<index>;i=<n>` (fragile) or a bare `i=85`. Pure; the
 * driver resolves URIs against the server's namespace array at every (re)connect.
 */
export type NamespaceRef = { kind: 'uri'; uri: string } | { kind: 'index'; index: number };

export interface ParsedNodeId {
  namespace: NamespaceRef;
  identifierType: 's' | 'i' | 'g' | 'b';
  identifier: string;
}

const PATTERN = /^(?:nsu=([^;]+);|ns=(\d+);)?([sigb])=(.+)$/s;

export function parseNodeIdText(text: string): ParsedNodeId {
  const m = PATTERN.exec(text);
  if (!m) throw new Error(`node id ${JSON.stringify(text)} must look like "nsu=<uri>;s=<name>" or "ns=<n>;i=<n>"`);
  const [, uri, index, type, identifier] = m;
  const namespace: NamespaceRef =
    uri !== undefined ? { kind: 'uri', uri } : { kind: 'index', index: index === undefined ? 0 : Number(index) };
  return { namespace, identifierType: type as ParsedNodeId['identifierType'], identifier: identifier! };
}

/**
 * `ns=<index>;<type>=<id>` for the server whose namespace array is given, or an error
 * message naming the node and the namespaces the server does have.
 */
export function resolveNodeId(
  text: string,
  namespaceArray: readonly string[],
): { ok: true; nodeId: string } | { ok: false; error: string } {
  let parsed: ParsedNodeId;
  try {
    parsed = parseNodeIdText(text);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  let index: number;
  if (parsed.namespace.kind === 'uri') {
    index = namespaceArray.indexOf(parsed.namespace.uri);
    if (index < 0) {
      return {
        ok: false,
        error: `node ${text}: namespace URI "${parsed.namespace.uri}" is not served (server namespaces: ${namespaceArray.join(', ')})`,
      };
    }
  } else {
    index = parsed.namespace.index;
    if (index >= namespaceArray.length) {
      return {
        ok: false,
        error: `node ${text}: namespace index ${index} does not exist (server has ${namespaceArray.length})`,
      };
    }
  }
  return { ok: true, nodeId: `ns=${index};${parsed.identifierType}=${parsed.identifier}` };
}

/** `nsu=<uri>;…` text for a node id given as `ns=<index>;…`, for profiles drafted by browse. */
export function toNsuText(nodeId: string, namespaceArray: readonly string[]): string {
  const parsed = parseNodeIdText(nodeId);
  if (parsed.namespace.kind === 'uri') return nodeId;
  const uri = namespaceArray[parsed.namespace.index];
  if (parsed.namespace.index === 0 || uri === undefined)
    return parsed.namespace.index === 0 ? `${parsed.identifierType}=${parsed.identifier}` : nodeId;
  return `nsu=${uri};${parsed.identifierType}=${parsed.identifier}`;
}
