import { z } from 'zod';
import { TagName } from './profile-schema.ts';

/** Name of an environment variable holding a secret; secrets never sit in YAML. */
const EnvName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'environment variable names are UPPER_SNAKE_CASE');
const ChamberId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'chamber ids are lower-case letters, digits, - and _ (they become MQTT topic levels)');

/** Per-tag overrides in a device instance (calibration, units, write permission). */
export const TagOverride = z
  .object({
    scale: z.number().finite(),
    offset: z.number().finite(),
    unit: z.string().min(1),
    standard_name: z.string(),
    description: z.string(),
    writable: z.boolean(),
    enabled: z.boolean(),
  })
  .partial()
  .strict();
export type TagOverride = z.infer<typeof TagOverride>;

export const OpcuaAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('anonymous') }),
  z.object({ type: z.literal('username'), username_env: EnvName, password_env: EnvName }),
  z.object({ type: z.literal('certificate'), cert_file: z.string(), key_file: z.string() }),
]);

export const OpcuaOptions = z
  .object({
    mode: z.enum(['subscription', 'poll']).default('subscription'),
    publishing_interval_ms: z.number().int().min(50).optional(),
    sampling_interval_ms: z.number().int().min(0).optional(),
    queue_size: z.number().int().min(1).max(1000).default(10),
    /** Monitored items are created in batches of this size. */
    batch_size: z.number().int().min(1).max(10_000).default(1000),
    security_mode: z.enum(['None', 'Sign', 'SignAndEncrypt']).default('None'),
    security_policy: z
      .enum(['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'])
      .default('None'),
    auth: OpcuaAuth.default({ type: 'anonymous' }),
  })
  .strict();
export type OpcuaOptions = z.infer<typeof OpcuaOptions>;

export const ModbusOptions = z
  .object({
    unit_id: z.number().int().min(0).max(255).default(1),
    timeout_ms: z.number().int().min(10).default(1000),
    retries: z.number().int().min(0).max(10).default(1),
    /** Largest hole (registers) bridged when merging adjacent tags into one request. */
    max_gap: z.number().int().min(0).max(125).default(8),
    max_registers: z.number().int().min(1).max(125).default(125),
    max_bits: z.number().int().min(1).max(2000).default(2000),
    /** Serial line settings for rtu:// endpoints. */
    baud_rate: z.number().int().positive().default(9600),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    data_bits: z.union([z.literal(7), z.literal(8)]).default(8),
    stop_bits: z.union([z.literal(1), z.literal(2)]).default(1),
  })
  .strict();
export type ModbusOptions = z.infer<typeof ModbusOptions>;

const ChamberBase = {
  id: ChamberId,
  name: z.string().optional(),
  profile: z.string().min(1),
  /** Poll interval (Modbus, OPC UA poll mode) or default publishing interval (OPC UA). */
  interval_ms: z.number().int().min(10).default(1000),
  overrides: z.record(TagName, TagOverride).default({}),
};

export const OpcuaChamber = z
  .object({
    ...ChamberBase,
    driver: z.literal('opcua'),
    endpoint: z.string().regex(/^opc\.tcp:\/\/[^\s/:]+(:\d{1,5})?(\/.*)?$/, 'OPC UA endpoints look like opc.tcp://host:4840[/path]'),
    opcua: OpcuaOptions.default(OpcuaOptions.parse({})),
  })
  .strict();

export const ModbusChamber = z
  .object({
    ...ChamberBase,
    driver: z.literal('modbus'),
    /** tcp://host:502 for Modbus TCP, rtu:///dev/ttyUSB0 for a serial line. */
    endpoint: z.string().regex(/^(tcp:\/\/[^\s/:]+(:\d{1,5})?|rtu:\/\/\/\S+)$/, 'Modbus endpoints look like tcp://host:502 or rtu:///dev/ttyUSB0'),
    modbus: ModbusOptions.default(ModbusOptions.parse({})),
  })
  .strict();

export const Chamber = z.discriminatedUnion('driver', [OpcuaChamber, ModbusChamber]);
export type Chamber = z.infer<typeof Chamber>;
export type OpcuaChamber = z.infer<typeof OpcuaChamber>;
export type ModbusChamber = z.infer<typeof ModbusChamber>;

export const MqttConfig = z
  .object({
    /** External broker (mqtt://, mqtts://, ws://, wss://); unset = embedded broker. */
    url: z.string().regex(/^(mqtts?|wss?):\/\/\S+$/, 'broker URLs look like mqtt://host:1883, mqtts://, ws:// or wss://').optional(),
    /** Port of the embedded broker. */
    port: z.number().int().min(0).max(65535).default(1883),
    prefix: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/).default('octopus'),
    client_id: z.string().optional(),
    username_env: EnvName.optional(),
    password_env: EnvName.optional(),
    ca_file: z.string().optional(),
    cert_file: z.string().optional(),
    key_file: z.string().optional(),
    keepalive_s: z.number().int().min(1).default(30),
    /** QoS 1 messages in flight before waiting for PUBACKs. */
    inflight: z.number().int().min(1).max(65535).default(256),
  })
  .strict();
export type MqttConfig = z.infer<typeof MqttConfig>;

export const SpoolConfig = z
  .object({
    /** Relative paths are resolved against the data directory. */
    dir: z.string().default('spool'),
    max_bytes: z.number().int().min(1024).default(1024 ** 3),
    segment_bytes: z.number().int().min(1024).default(16 * 1024 ** 2),
    /** always = fsync each append; interval = every fsync_interval_ms; never = OS decides. */
    fsync: z.enum(['always', 'interval', 'never']).default('interval'),
    fsync_interval_ms: z.number().int().min(1).default(1000),
  })
  .strict();
export type SpoolConfig = z.infer<typeof SpoolConfig>;

/**
 * The simulator serves every chamber whose endpoint points at this machine's loopback
 * (127.0.0.1 / localhost) as a real OPC UA or Modbus TCP server, from its profile.
 */
export const SimulatorConfig = z
  .object({
    enabled: z.boolean().default(false),
    /** Simulated time runs this many times faster (a day cycle in minutes for demos). */
    time_factor: z.number().positive().default(1),
    seed: z.number().int().default(1),
  })
  .strict();
export type SimulatorConfig = z.infer<typeof SimulatorConfig>;

/**
 * InfluxDB sink of the collector (v2 write API: InfluxDB 2.x, 3.x, 1.8+ and
 * VictoriaMetrics). Off unless `url` is set (or OCTOPUS_INFLUX_URL).
 */
export const InfluxConfig = z
  .object({
    url: z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'InfluxDB URLs look like http://influxdb:8086').optional(),
    /** Write endpoint: `v2` (/api/v2/write: InfluxDB 2.x, 3.x, 1.8+, VictoriaMetrics) or `v1` (/write: InfluxDB 1.x before 1.8). */
    api: z.enum(['v2', 'v1']).default('v2'),
    org: z.string().default(''),
    bucket: z.string().min(1).optional(),
    /** InfluxDB 1.x: database (and retention policy) instead of bucket; sent as db/rp. */
    database: z.string().min(1).optional(),
    retention_policy: z.string().min(1).optional(),
    /** Variable holding the API token (InfluxDB 2/3) or `user:password` (1.x). */
    token_env: EnvName.default('OCTOPUS_INFLUX_TOKEN'),
    /** One measurement for every chamber; tags chamber, q, tag (docs/influxdb.md). */
    measurement: z.string().min(1).default('climate'),
    batch_lines: z.number().int().min(1).max(100_000).default(5000),
    flush_interval_ms: z.number().int().min(10).default(1000),
    gzip: z.boolean().default(true),
    timeout_ms: z.number().int().min(100).default(10_000),
    /** Batches written at once; more overlap round trips, more memory. */
    concurrency: z.number().int().min(1).max(16).default(4),
    retry_min_ms: z.number().int().min(10).default(1000),
    retry_max_ms: z.number().int().min(10).default(60_000),
    /** Disk buffer for batches that could not be written (relative to data_dir). */
    buffer_dir: z.string().default('influx-buffer'),
    buffer_max_bytes: z.number().int().min(1024).default(2 * 1024 ** 3),
    /** Batches refused with a 4xx other than 429 go here with the reason (relative to data_dir). */
    dead_letter_file: z.string().default('influx-dead-letter.jsonl'),
  })
  .strict()
  .refine((c) => !c.url || c.bucket !== undefined || c.database !== undefined, { message: 'give bucket (InfluxDB 2/3, VictoriaMetrics) or database (InfluxDB 1.x)', path: ['bucket'] })
  .refine((c) => c.api === 'v2' || !c.url || c.database !== undefined, { message: 'the v1 write API needs database', path: ['database'] });
export type InfluxConfig = z.infer<typeof InfluxConfig>;

/**
 * Experiments and their NetCDF archive. Experiment folders live under `root` (the NAS
 * mount; relative paths are under data_dir); while it is unavailable they go to
 * `local_dir` and move over when it returns.
 */
export const ExperimentsConfig = z
  .object({
    enabled: z.boolean().default(true),
    root: z.string().default('experiments'),
    local_dir: z.string().default('experiments-local'),
    /** Where open runs' files are written; closed runs move into their experiment folder. */
    working_dir: z.string().default('runs-open'),
    /** Silent slots are added up to the wall clock minus this; a stopped run stays open this long for samples on their way (late samples land whenever they arrive). */
    reorder_window_ms: z.number().int().min(0).max(600_000).default(5000),
    /** A sample stamped more than this after its receive time is refused for its chamber (clock glitch). */
    max_future_ms: z.number().int().min(0).max(3_600_000).default(10_000),
    /**
     * The per-run sample log is written before each MQTT acknowledgement (a process kill
     * loses nothing); it is fdatasynced before each acknowledgement (always) or every
     * log_fsync_interval_ms (interval: a power cut may lose that much).
     */
    log_fsync: z.enum(['always', 'interval']).default('interval'),
    log_fsync_interval_ms: z.number().int().min(1).default(200),
    /** The archiving collector refreshes its lease on working_dir this often…; a lease older than this is taken over by another collector. */
    lease_ttl_ms: z.number().int().min(500).max(14_000).default(5000),
    flush_interval_ms: z.number().int().min(50).default(1000),
    nas_check_interval_ms: z.number().int().min(100).default(30_000),
  })
  .strict();
export type ExperimentsConfig = z.infer<typeof ExperimentsConfig>;

/** The collector: MQTT data → sinks. In the embedded default it runs inside `octopus start`. */
export const CollectorConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Shared-subscription group: several collectors with the same group split the load (MQTT 5 / Mosquitto). */
    group: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
    /** Fixed client id → persistent session: the broker queues QoS 1 data while the collector is away. */
    client_id: z.string().min(1).optional(),
    /** Unacknowledged QoS 1 messages the broker may send before the collector acknowledges. */
    receive_maximum: z.number().int().min(1).max(65535).default(1000),
    /**
     * This collector may keep the NetCDF archive of experiment runs and act on the PLC run
     * triggers. Several may (a `group` sharing one data folder): the one holding the
     * archive lease on the working folder writes, the others stand by and take over when
     * it dies. Each gets every sample through its own, unshared subscription.
     */
    archive: z.boolean().default(true),
    /** Collector HTTP port when run on its own (`octopus collect`). */
    http_port: z.number().int().min(0).max(65535).default(8081),
  })
  .strict();
export type CollectorConfig = z.infer<typeof CollectorConfig>;

export const Config = z
  .object({
    gateway: z.object({ id: ChamberId.default('gw1') }).strict().default({ id: 'gw1' }),
    data_dir: z.string().default('./data'),
    /** Extra folders searched for profiles (drivers/ is always searched). */
    profile_dirs: z.array(z.string()).default([]),
    mqtt: MqttConfig.default(MqttConfig.parse({})),
    spool: SpoolConfig.default(SpoolConfig.parse({})),
    http: z.object({ port: z.number().int().min(0).max(65535).default(8080), host: z.string().default('0.0.0.0') }).strict().default({ port: 8080, host: '0.0.0.0' }),
    simulator: SimulatorConfig.default(SimulatorConfig.parse({})),
    collector: CollectorConfig.default(CollectorConfig.parse({})),
    influx: InfluxConfig.default(InfluxConfig.parse({})),
    experiments: ExperimentsConfig.default(ExperimentsConfig.parse({})),
    chambers: z.array(Chamber).default([]),
  })
  .strict();
export type Config = z.infer<typeof Config>;
