import type { ModbusChamber, OpcuaChamber } from './instance-schema.ts';
import type { ModbusProfile, ModbusTag, OpcuaProfile, OpcuaTag } from './profile-schema.ts';

/** A chamber of the loaded configuration with its profile; tags after the instance's overrides are applied (disabled tags removed). */
export interface ResolvedModbus {
  chamber: ModbusChamber;
  profile: ModbusProfile;
  tags: ModbusTag[];
}
export interface ResolvedOpcua {
  chamber: OpcuaChamber;
  profile: OpcuaProfile;
  tags: OpcuaTag[];
}
