export { ROLES, Role, atLeast } from './roles.ts';
export { UserStore, AuthError, UserName, usersFile, type Principal, type TokenRecord, type UserRecord } from './users.ts';
export { AuditLog, appendAudit, auditFile, type AuditEntry } from './audit.ts';
export { hashPassword, verifyPassword } from './password.ts';
