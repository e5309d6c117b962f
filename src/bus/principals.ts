import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import type { UserStore } from '../auth/users.ts';
import { anonymousPrincipal, personPrincipal, reservedName, type MqttPrincipal } from './acl.ts';

/** A connected client's identity: the principal, and how it signed in (to re-check it). */
export interface Identity {
  principal: MqttPrincipal;
  via: 'service' | 'token' | 'password' | 'anonymous';
  token?: string;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Sign-in throttle per user name: after this many failures within the window, refused unchecked for LOCK_MS. */
export const MAX_FAILURES = 10;
const WINDOW_MS = 5 * 60_000;
const LOCK_MS = 60_000;

/**
 * Who may connect to the embedded broker: the in-process services, with passwords made
 * at startup and kept in memory only; people, with their user name and an API token
 * (or their password) from the UserStore; anonymous clients only when enabled.
 */
export class PrincipalDirectory {
  private readonly services = new Map<string, { hash: Buffer; principal: MqttPrincipal }>();
  private readonly failures = new Map<string, { count: number; first: number; lockedUntil: number }>();

  constructor(
    private readonly prefix: string,
    private readonly users?: UserStore,
    private readonly allowAnonymous = false,
  ) {}

  /** Registers a service principal with a fresh random password; returns its credentials. */
  addService(principal: MqttPrincipal): { username: string; password: string } {
    const password = randomBytes(24).toString('base64url');
    this.services.set(principal.name, { hash: digest(password), principal });
    return { username: principal.name, password };
  }

  /** The identity of a CONNECT, or a refusal code: 4 = bad user name or password, 5 = not authorised. */
  async authenticate(username: string | undefined, password: Buffer | undefined): Promise<Identity | 4 | 5> {
    if (!username)
      return this.allowAnonymous && !password ? { principal: anonymousPrincipal(this.prefix), via: 'anonymous' } : 5;
    // Guessing passwords (each scrypt check costs ~50 ms of CPU) is throttled per user name.
    // Not for the in-process services (192-bit random passwords): a lockout would only let
    // a local client knock the gateway off the broker.
    if (this.services.has(username)) return this.check(username, password);
    const now = Date.now();
    const f = this.failures.get(username);
    if (f && f.lockedUntil > now) return 4;
    const result = await this.check(username, password);
    if (result !== 4) this.failures.delete(username);
    else {
      const entry = f && now - f.first < WINDOW_MS ? f : { count: 0, first: now, lockedUntil: 0 };
      entry.count++;
      if (entry.count >= MAX_FAILURES) entry.lockedUntil = now + LOCK_MS;
      this.failures.delete(username);
      this.failures.set(username, entry);
      // Bounded: the oldest entries go first.
      if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!);
    }
    return result;
  }

  private async check(username: string, password: Buffer | undefined): Promise<Identity | 4> {
    if (!password || password.length === 0 || password.length > 1024) return 4;
    const service = this.services.get(username);
    if (service)
      return timingSafeEqual(digest(password), service.hash) ? { principal: service.principal, via: 'service' } : 4;
    if (reservedName(username) || !this.users) return 4;
    const secret = password.toString('utf8');
    const byToken = this.users.authenticate(secret);
    if (byToken) {
      if (byToken.user !== username) return 4;
      return {
        principal: personPrincipal(this.prefix, byToken.user, byToken.role),
        via: 'token',
        token: byToken.token,
      };
    }
    if (secret.startsWith('oct_')) return 4;
    const byPassword = await this.users.login(username, secret);
    return byPassword
      ? { principal: personPrincipal(this.prefix, byPassword.user, byPassword.role), via: 'password' }
      : 4;
  }

  /**
   * The principal as it is now: a person disabled, deleted or whose token was revoked
   * since connecting has none (undefined); a changed role changes the rules.
   */
  current(id: Identity): MqttPrincipal | undefined {
    if (id.via === 'service' || id.via === 'anonymous' || !this.users) return id.principal;
    // Checked at most once a second per client: every forwarded message asks.
    const hit = this.recent.get(id);
    const now = Date.now();
    if (hit && now - hit.at < 1000) return hit.principal;
    const principal = this.lookup(id);
    this.recent.set(id, { at: now, principal });
    return principal;
  }

  private readonly recent = new WeakMap<Identity, { at: number; principal: MqttPrincipal | undefined }>();

  private lookup(id: Identity): MqttPrincipal | undefined {
    if (!this.users) return id.principal;
    let u;
    try {
      u = this.users.users().find((x) => x.name === id.principal.name);
    } catch {
      return undefined;
    }
    if (!u || u.disabled || u.pending) return undefined;
    if (id.via === 'token' && id.token) {
      const t = this.users.token(id.token);
      if (!t || t.revoked || (t.expires && Date.parse(t.expires) <= Date.now())) return undefined;
    }
    return u.role === id.principal.role ? id.principal : personPrincipal(this.prefix, u.name, u.role);
  }
}
