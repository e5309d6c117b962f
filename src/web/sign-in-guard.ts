import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { SignInConfig } from '../config/instance-schema.ts';
import { addressKey, Throttle } from './throttle.ts';

/**
 * The sign-in throttles of one app: failed sign-ins per account and per client address,
 * and registrations per address. `now` is injectable (tests move time, nothing sleeps).
 */
export class SignInGuard {
  readonly accounts: Throttle;
  readonly addresses: Throttle;
  readonly registrations: Throttle;

  constructor(cfg: z.infer<typeof SignInConfig>, now: () => number = Date.now, maxEntries = 10_000) {
    const base = {
      windowMs: cfg.window_s * 1000,
      lockoutMs: cfg.lockout_s * 1000,
      maxLockoutMs: cfg.max_lockout_s * 1000,
    };
    this.accounts = new Throttle({ ...base, maxFailures: cfg.max_failures }, now, maxEntries);
    this.addresses = new Throttle({ ...base, maxFailures: cfg.max_failures_per_address }, now, maxEntries);
    this.registrations = new Throttle({ ...base, maxFailures: cfg.max_registrations_per_address }, now, maxEntries);
  }

  /** The address key of a request (`req.ip`: the peer, or the client named by a trusted proxy). */
  static address(req: FastifyRequest): string {
    return addressKey(req.ip);
  }

  /** The account key of a user name as typed (case-folded, bounded). */
  static account(name: string): string {
    return `user:${name.toLowerCase().slice(0, 128)}`;
  }

  /** Wait (ms) before this address, and this account if given, may try to sign in again. */
  signInWait(req: FastifyRequest, user?: string): number {
    return Math.max(
      this.addresses.retryAfterMs(SignInGuard.address(req)),
      user ? this.accounts.retryAfterMs(SignInGuard.account(user)) : 0,
    );
  }

  /** A failed sign-in: counts for the address, and the account if given; returns the wait now imposed. */
  signInFailed(req: FastifyRequest, user?: string): number {
    const a = this.addresses.fail([SignInGuard.address(req)]);
    const u = user ? this.accounts.fail([SignInGuard.account(user)]) : 0;
    return Math.max(a, u);
  }

  /** A successful sign-in forgets the account's failures (not the address's). */
  signedIn(user: string): void {
    this.accounts.succeed(SignInGuard.account(user));
  }
}
