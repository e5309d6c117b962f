import { isIP } from 'node:net';
import { z } from 'zod';
import { FacilityConfig } from './facility-schema.ts';
import { ToleranceOverrides } from '../fidelity/tolerance.ts';
import { AlarmsConfig } from '../alarms/config.ts';
import { TagName } from './profile-schema.ts';

/** Name of an environment variable holding a secret; secrets never sit in YAML. */
const EnvName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'environment variable names are UPPER_SNAKE_CASE');
const ChamberId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    'chamber ids are lower-case letters, digits, - and _ (they become MQTT topic levels)',
  );

/** Per-tag overrides in a device instance (calibration, units, write permission). */
export const TagOverride = z
  .object({
    scale: z
      .number()
      .finite()
      .describe("Calibration: replaces the profile's scale (engineering = raw × scale + offset)"),
    offset: z
      .number()
      .finite()
      .describe("Calibration: replaces the profile's offset (engineering = raw × scale + offset)"),
    unit: z.string().min(1).describe("Replaces the profile's udunits2 unit"),
    standard_name: z.string().describe("Replaces the profile's CF standard name"),
    description: z.string().describe("Replaces the profile's description of the tag"),
    writable: z.boolean().describe('Allows (true) or forbids (false) writes to this tag on this chamber'),
    enabled: z.boolean().describe('false: this chamber does not read the tag at all'),
  })
  .partial()
  .strict();
export type TagOverride = z.infer<typeof TagOverride>;

export const OpcuaAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('anonymous').describe('No user identity') }).strict(),
  z
    .object({
      type: z.literal('username').describe('User name and password'),
      username_env: EnvName.describe('Environment variable holding the user name'),
      password_env: EnvName.describe('Environment variable holding the password'),
    })
    .strict(),
  z
    .object({
      type: z.literal('certificate').describe('X.509 user certificate'),
      cert_file: z.string().describe('User certificate file (PEM or DER), relative to the configuration file'),
      key_file: z.string().describe('Private key of the user certificate (PEM), relative to the configuration file'),
    })
    .strict(),
]);

export const OpcuaOptions = z
  .object({
    mode: z
      .enum(['subscription', 'poll'])
      .default('subscription')
      .describe(
        'subscription (default: the server reports changes; unchanged values are sent once per connection) or poll (read every interval_ms)',
      ),
    publishing_interval_ms: z
      .number()
      .int()
      .min(50)
      .optional()
      .describe("Subscription publishing interval, ms (default: the chamber's interval_ms)"),
    sampling_interval_ms: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Server-side sampling interval of monitored items, ms (default: the publishing interval)'),
    queue_size: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe('Values the server queues per monitored item between publishes'),
    /** Monitored items are created in batches of this size. */
    batch_size: z.number().int().min(1).max(10_000).default(1000).describe('Monitored items created per request'),
    security_mode: z
      .enum(['None', 'Sign', 'SignAndEncrypt'])
      .default('None')
      .describe('OPC UA message security: None, Sign or SignAndEncrypt (trust the client certificate on the PLC)'),
    security_policy: z
      .enum(['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'])
      .default('None')
      .describe('OPC UA security policy (with Sign / SignAndEncrypt)'),
    auth: OpcuaAuth.default({ type: 'anonymous' }).describe(
      'User identity: anonymous (default), username (from environment variables) or certificate',
    ),
    /**
     * Unknown server certificate (Sign/SignAndEncrypt): `pinned` refuses it until
     * `octopus trust accept`; `tofu` trusts an endpoint's first one. A changed one is refused in both.
     */
    server_trust: z
      .enum(['pinned', 'tofu'])
      .default('pinned')
      .describe(
        'Unknown PLC certificate (Sign/SignAndEncrypt): pinned refuses it until `octopus trust accept`; tofu trusts the first one seen per endpoint. A changed certificate is refused in both',
      ),
    /** How often tags missing on the server (namespace or node not there yet) are looked up again. */
    resolve_interval_ms: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .describe(
        'How often tags missing on the server (namespace or node not there yet) are looked up again, ms, without reconnecting',
      ),
  })
  .strict();
export type OpcuaOptions = z.infer<typeof OpcuaOptions>;

export const ModbusOptions = z
  .object({
    unit_id: z
      .number()
      .int()
      .min(0)
      .max(255)
      .default(1)
      .describe('Modbus unit (slave) id of the controller (default 1)'),
    timeout_ms: z.number().int().min(10).default(1000).describe('Timeout of one request, ms'),
    retries: z.number().int().min(0).max(10).default(1).describe('Retries of a timed-out request'),
    /** Largest hole (registers) bridged when merging adjacent tags into one request. */
    max_gap: z
      .number()
      .int()
      .min(0)
      .max(125)
      .default(8)
      .describe(
        'Largest hole (registers or bits) bridged when merging adjacent tags into one read request (default 8)',
      ),
    max_registers: z
      .number()
      .int()
      .min(1)
      .max(125)
      .default(125)
      .describe('Most registers read in one request (the protocol allows 125)'),
    max_bits: z
      .number()
      .int()
      .min(1)
      .max(2000)
      .default(2000)
      .describe('Most coils or discrete inputs read in one request (the protocol allows 2000)'),
    /** Serial line settings for rtu:// endpoints. */
    baud_rate: z.number().int().positive().default(9600).describe('Serial line speed for rtu:// endpoints'),
    parity: z.enum(['none', 'even', 'odd']).default('none').describe('Serial parity for rtu:// endpoints'),
    data_bits: z
      .union([z.literal(7), z.literal(8)])
      .default(8)
      .describe('Serial data bits for rtu:// endpoints'),
    stop_bits: z
      .union([z.literal(1), z.literal(2)])
      .default(1)
      .describe('Serial stop bits for rtu:// endpoints'),
  })
  .strict();
export type ModbusOptions = z.infer<typeof ModbusOptions>;

const ChamberBase = {
  id: ChamberId.describe('Chamber id: lower-case letters, digits, - and _; the MQTT topic level and InfluxDB tag'),
  name: z.string().optional().describe('Human name of the chamber (dashboards)'),
  profile: z
    .string()
    .min(1)
    .describe('Device profile id <vendor>-<model> (drivers/<kind>/<vendor>-<model>.yaml or a profile_dirs folder)'),
  /** Poll interval (Modbus, OPC UA poll mode) or default publishing interval (OPC UA). */
  interval_ms: z
    .number()
    .int()
    .min(10)
    .default(1000)
    .describe('Poll interval (Modbus, OPC UA poll mode) or default publishing interval (OPC UA), ms'),
  overrides: z
    .record(TagName, TagOverride)
    .default({})
    .describe('Per-tag changes for this chamber, by tag name: calibration, unit, writable, enabled'),
  tolerances: ToleranceOverrides.default({}).describe(
    "Per controlled variable (by the measured tag's name): band, min_duration_s or hysteresis overriding the profile's tolerances for this chamber",
  ),
};

export const OpcuaChamber = z
  .object({
    ...ChamberBase,
    driver: z.literal('opcua').describe('opcua: the PLC is an OPC UA server'),
    endpoint: z
      .string()
      .regex(/^opc\.tcp:\/\/[^\s/:]+(:\d{1,5})?(\/.*)?$/, 'OPC UA endpoints look like opc.tcp://host:4840[/path]')
      .describe('OPC UA server: opc.tcp://host:4840[/path]'),
    opcua: OpcuaOptions.default(OpcuaOptions.parse({})).describe('OPC UA connection options'),
  })
  .strict();

export const ModbusChamber = z
  .object({
    ...ChamberBase,
    driver: z.literal('modbus').describe('modbus: the PLC speaks Modbus TCP or RTU'),
    /** tcp://host:502 for Modbus TCP, rtu:///dev/ttyUSB0 for a serial line. */
    endpoint: z
      .string()
      .regex(
        /^(tcp:\/\/[^\s/:]+(:\d{1,5})?|rtu:\/\/\/\S+)$/,
        'Modbus endpoints look like tcp://host:502 or rtu:///dev/ttyUSB0',
      )
      .describe(
        'tcp://host:502 for Modbus TCP, rtu:///dev/ttyUSB0 for a serial line; chambers on one endpoint share its connection',
      ),
    modbus: ModbusOptions.default(ModbusOptions.parse({})).describe('Modbus connection options'),
  })
  .strict();

export const Chamber = z.discriminatedUnion('driver', [OpcuaChamber, ModbusChamber]);
export type Chamber = z.infer<typeof Chamber>;
export type OpcuaChamber = z.infer<typeof OpcuaChamber>;
export type ModbusChamber = z.infer<typeof ModbusChamber>;

/**
 * The embedded broker of `octopus start` and the limits that `octopus mqtt-config`
 * writes into the Mosquitto configuration (docs/mqtt.md, docs/security.md).
 */
export const BrokerConfig = z
  .object({
    /** Interface the embedded broker listens on (loopback unless opened on purpose). */
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('Interface the embedded broker listens on (loopback unless opened on purpose)'),
    /** Unauthenticated clients may connect, read-only (data and status). */
    allow_anonymous: z
      .boolean()
      .default(false)
      .describe('Unauthenticated clients may connect, read-only (data and status)'),
    /** Largest MQTT packet accepted; a client announcing a larger one is disconnected. */
    max_packet_bytes: z
      .number()
      .int()
      .min(4096)
      .max(256 * 1024 ** 2)
      .default(1024 ** 2)
      .describe('Largest MQTT packet accepted; a client announcing a larger one is disconnected'),
    max_connections: z.number().int().min(1).max(100_000).default(256).describe('Most clients connected at once'),
    /** Per client: QoS 1/2 messages in flight (Mosquitto max_inflight_messages; aedes: inbound QoS 2 window). */
    max_inflight: z.number().int().min(1).max(65_535).default(100).describe('Per client: QoS 1/2 messages in flight'),
    /** Per client: QoS 1/2 messages queued while offline or beyond the in-flight window (Mosquitto max_queued_messages). */
    max_queued: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(1_000_000)
      .describe('Per client: QoS 1/2 messages queued while offline or beyond the in-flight window (Mosquitto)'),
    /** Retained messages kept by the embedded broker (distinct topics). */
    retained_max_count: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('Retained messages kept by the embedded broker (distinct topics)'),
    /** Largest retained payload. */
    retained_max_bytes: z
      .number()
      .int()
      .min(64)
      .max(16 * 1024 ** 2)
      .default(64 * 1024)
      .describe('Largest retained payload, bytes'),
  })
  .strict();
export type BrokerConfig = z.infer<typeof BrokerConfig>;

export const MqttConfig = z
  .object({
    /** External broker (mqtt://, mqtts://, ws://, wss://); unset = embedded broker. */
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/\S+$/, 'broker URLs look like mqtt://host:1883, mqtts://, ws:// or wss://')
      .optional()
      .describe('External broker (mqtt://, mqtts://, ws://, wss://); unset = the embedded broker'),
    /** Port of the embedded broker. */
    port: z.number().int().min(0).max(65535).default(1883).describe('Port of the embedded broker (default 1883)'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/)
      .default('octopus')
      .describe('First topic levels of every Octopus topic (default octopus)'),
    client_id: z.string().optional().describe('MQTT client id of the gateway (default derived from gateway.id)'),
    username_env: EnvName.optional().describe('Environment variable holding the broker user name'),
    password_env: EnvName.optional().describe('Environment variable holding the broker password'),
    ca_file: z
      .string()
      .optional()
      .describe('CA certificate file for mqtts:// / wss:// (relative to the configuration file)'),
    cert_file: z.string().optional().describe('Client certificate file for TLS client authentication'),
    key_file: z.string().optional().describe('Private key of the client certificate'),
    keepalive_s: z.number().int().min(1).default(30).describe('MQTT keepalive, seconds'),
    /** QoS 1 messages in flight before waiting for PUBACKs. */
    inflight: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(256)
      .describe('QoS 1 messages in flight before waiting for PUBACKs'),
    broker: BrokerConfig.default(BrokerConfig.parse({})).describe(
      'The embedded broker: listen address, anonymous access, limits',
    ),
  })
  .strict();
export type MqttConfig = z.infer<typeof MqttConfig>;

export const SpoolConfig = z
  .object({
    /** Relative paths are resolved against the data directory. */
    dir: z
      .string()
      .default('spool')
      .describe('Folder of the disk spool that keeps samples while the broker is unreachable (relative to data_dir)'),
    max_bytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 ** 3)
      .describe('Largest spool size in bytes; the oldest segments go first beyond it'),
    segment_bytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024 ** 2)
      .describe('Size of one spool segment file in bytes'),
    /** always = fsync each append; interval = every fsync_interval_ms; never = OS decides. */
    fsync: z
      .enum(['always', 'interval', 'never'])
      .default('interval')
      .describe('always = fsync each append; interval = every fsync_interval_ms; never = the OS decides'),
    fsync_interval_ms: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('fsync period of the spool with fsync: interval, ms'),
  })
  .strict();
export type SpoolConfig = z.infer<typeof SpoolConfig>;

/**
 * The simulator serves every chamber whose endpoint points at this machine's loopback
 * (127.0.0.1 / localhost) as a real OPC UA or Modbus TCP server, from its profile.
 */
export const SimulatorConfig = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe('Serve every chamber whose endpoint is on loopback (127.0.0.1, localhost) from its profile'),
    /** Simulated time runs this many times faster (a day cycle in minutes for demos). */
    time_factor: z
      .number()
      .positive()
      .default(1)
      .describe('Simulated time runs this many times faster (a day cycle in minutes for demos)'),
    seed: z.number().int().default(1).describe('Random seed: the same seed replays the same chambers'),
  })
  .strict();
export type SimulatorConfig = z.infer<typeof SimulatorConfig>;

/**
 * InfluxDB sink of the collector (v2 write API: InfluxDB 2.x, 3.x, 1.8+ and
 * VictoriaMetrics). Off unless `url` is set (or OCTOPUS_INFLUX_URL).
 */
export const InfluxConfig = z
  .object({
    url: z
      .string()
      .regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'InfluxDB URLs look like http://influxdb:8086')
      .optional()
      .describe('InfluxDB (or VictoriaMetrics) URL; unset = no InfluxDB sink'),
    /** Write endpoint: `v2` (/api/v2/write: InfluxDB 2.x, 3.x, 1.8+, VictoriaMetrics) or `v1` (/write: InfluxDB 1.x before 1.8). */
    api: z
      .enum(['v2', 'v1'])
      .default('v2')
      .describe(
        'Write endpoint: v2 (/api/v2/write: InfluxDB 2.x, 3.x, 1.8+, VictoriaMetrics) or v1 (/write: InfluxDB 1.x before 1.8)',
      ),
    org: z.string().default('').describe('InfluxDB 2/3 organisation'),
    bucket: z.string().min(1).optional().describe('InfluxDB 2/3 bucket (or VictoriaMetrics db)'),
    /** InfluxDB 1.x: database (and retention policy) instead of bucket; sent as db/rp. */
    database: z.string().min(1).optional().describe('InfluxDB 1.x database, sent as db'),
    retention_policy: z.string().min(1).optional().describe('InfluxDB 1.x retention policy, sent as rp'),
    /** Variable holding the API token (InfluxDB 2/3) or `user:password` (1.x). */
    token_env: EnvName.default('OCTOPUS_INFLUX_TOKEN').describe(
      'Environment variable holding the API token (InfluxDB 2/3) or user:password (1.x)',
    ),
    /** One measurement for every chamber; tags chamber, q, tag (docs/influxdb.md). */
    measurement: z
      .string()
      .min(1)
      .default('climate')
      .describe('Measurement of every sample; tags chamber, q, tag (docs/influxdb.md)'),
    batch_lines: z.number().int().min(1).max(100_000).default(5000).describe('Lines per write request'),
    flush_interval_ms: z
      .number()
      .int()
      .min(10)
      .default(1000)
      .describe('Longest wait before a partial batch is written, ms'),
    gzip: z.boolean().default(true).describe('Compress write requests'),
    timeout_ms: z.number().int().min(100).default(10_000).describe('Timeout of one write request, ms'),
    /** Batches written at once; more overlap round trips, more memory. */
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(4)
      .describe('Batches written at once; more overlap round trips, more memory'),
    retry_min_ms: z
      .number()
      .int()
      .min(10)
      .default(1000)
      .describe('First retry delay after a failed write, ms (doubles up to retry_max_ms)'),
    retry_max_ms: z.number().int().min(10).default(60_000).describe('Longest retry delay, ms'),
    /** Disk buffer for batches that could not be written (relative to data_dir). */
    buffer_dir: z
      .string()
      .default('influx-buffer')
      .describe('Disk buffer for batches that could not be written (relative to data_dir)'),
    buffer_max_bytes: z
      .number()
      .int()
      .min(1024)
      .default(2 * 1024 ** 3)
      .describe('Largest disk buffer size in bytes'),
    /** Batches refused with a 4xx other than 429 go here with the reason (relative to data_dir). */
    dead_letter_file: z
      .string()
      .default('influx-dead-letter.jsonl')
      .describe('Batches refused with a 4xx other than 429 go here with the reason (relative to data_dir)'),
  })
  .strict()
  .refine((c) => !c.url || c.bucket !== undefined || c.database !== undefined, {
    message: 'give bucket (InfluxDB 2/3, VictoriaMetrics) or database (InfluxDB 1.x)',
    path: ['bucket'],
  })
  .refine((c) => c.api === 'v2' || !c.url || c.database !== undefined, {
    message: 'the v1 write API needs database',
    path: ['database'],
  });
export type InfluxConfig = z.infer<typeof InfluxConfig>;

/**
 * Experiments and their NetCDF archive. Experiment folders live under `root` (the NAS
 * mount; relative paths are under data_dir); while it is unavailable they go to
 * `local_dir` and move over when it returns.
 */
export const ExperimentsConfig = z
  .object({
    enabled: z.boolean().default(true).describe('Keep experiments and the NetCDF archive of their runs'),
    root: z
      .string()
      .default('experiments')
      .describe('Folder of the experiment folders (the NAS mount; relative paths are under data_dir)'),
    local_dir: z
      .string()
      .default('experiments-local')
      .describe('Where experiment folders go while root is unavailable; they move over when it returns'),
    /** Where open runs' files are written; closed runs move into their experiment folder. */
    working_dir: z
      .string()
      .default('runs-open')
      .describe("Where open runs' files are written; closed runs move into their experiment folder"),
    /** Silent slots are added up to the wall clock minus this; a stopped run stays open this long for samples on their way (late samples land whenever they arrive). */
    reorder_window_ms: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(5000)
      .describe(
        'Silent slots are added up to the wall clock minus this; a stopped run stays open this long for samples on their way (late samples land whenever they arrive), ms',
      ),
    /** A sample stamped more than this after its receive time is refused for its chamber (clock glitch). */
    max_future_ms: z
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .default(10_000)
      .describe(
        'A sample stamped more than this ahead of its receive time is refused for its chamber (clock glitch), ms',
      ),
    /**
     * The per-run sample log is written before each MQTT acknowledgement (a process kill
     * loses nothing); it is fdatasynced before each acknowledgement (always) or every
     * log_fsync_interval_ms (interval: a power cut may lose that much).
     */
    log_fsync: z
      .enum(['always', 'interval'])
      .default('interval')
      .describe(
        'The per-run sample log is written before each MQTT acknowledgement; fdatasync before each (always) or every log_fsync_interval_ms (interval)',
      ),
    log_fsync_interval_ms: z
      .number()
      .int()
      .min(1)
      .default(200)
      .describe('fdatasync interval of the per-run sample log with log_fsync: interval, ms'),
    /** The archiving collector refreshes its lease on working_dir this often…; a lease older than this is taken over by another collector. */
    lease_ttl_ms: z
      .number()
      .int()
      .min(500)
      .max(14_000)
      .default(5000)
      .describe('A writer lease on working_dir older than this is taken over by another collector, ms'),
    flush_interval_ms: z.number().int().min(50).default(1000).describe('How often open run files are flushed, ms'),
    nas_check_interval_ms: z
      .number()
      .int()
      .min(100)
      .default(30_000)
      .describe('How often an unavailable root is checked again, ms'),
  })
  .strict();
export type ExperimentsConfig = z.infer<typeof ExperimentsConfig>;

/** The collector: MQTT data → sinks. In the embedded default it runs inside `octopus start`. */
export const CollectorConfig = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Run the collector (MQTT data to InfluxDB and the archive) inside octopus start'),
    /** Shared-subscription group: several collectors with the same group split the load (MQTT 5 / Mosquitto). */
    group: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional()
      .describe(
        'Shared-subscription group: several collectors with the same group split the load (MQTT 5 / Mosquitto)',
      ),
    /** Fixed client id → persistent session: the broker queues QoS 1 data while the collector is away. */
    /**
     * MQTT client id. Default: stable per gateway id, host and data folder
     * (`octopus-collector-<gateway.id>-<hostname>-<hash of data_dir>`), so a restarted
     * collector resumes its persistent session. Collectors must have distinct ids.
     */
    client_id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'MQTT client id; default stable per gateway id, host and data folder, so a restarted collector resumes its persistent session',
      ),
    /** true = clean session (the broker forgets the collector while it is away: data published meanwhile is lost to it). */
    clean_session: z
      .boolean()
      .default(false)
      .describe(
        'true = clean session: the broker forgets the collector while it is away (data published meanwhile is lost to it)',
      ),
    /** MQTT 5 (with a `group`): how long the broker keeps the session of a disconnected collector. */
    session_expiry_s: z
      .number()
      .int()
      .min(0)
      .max(4_294_967_295)
      .default(7 * 24 * 3600)
      .describe('MQTT 5 (with a group): how long the broker keeps the session of a disconnected collector, seconds'),
    /** Samples stamped further than this ahead of the collector's clock are refused (per chamber, counted in health). */
    max_future_ms: z
      .number()
      .int()
      .min(0)
      .default(60_000)
      .describe(
        'Samples stamped further than this ahead of the collector clock are refused (per chamber, counted in health), ms',
      ),
    /** Unacknowledged QoS 1 messages the broker may send before the collector acknowledges. */
    receive_maximum: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(1000)
      .describe('Unacknowledged QoS 1 messages the broker may send before the collector acknowledges'),
    /**
     * This collector may keep the NetCDF archive of experiment runs and act on the PLC run
     * triggers. Several may (a `group` sharing one data folder): the one holding the
     * archive lease on the working folder writes, the others stand by and take over when
     * it dies. Each gets every sample through its own, unshared subscription.
     */
    archive: z
      .boolean()
      .default(true)
      .describe(
        'This collector keeps the NetCDF archive and watches the run triggers (exactly one collector of a group should)',
      ),
    /** Collector HTTP port when run on its own (`octopus collect`). */
    http_port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(8081)
      .describe('Collector HTTP port when run on its own (octopus collect)'),
    /**
     * The collector's own MQTT identity with an external broker (variables holding user
     * name and password); default mqtt.username_env / password_env. Lets `octopus start`
     * run gateway and collector in one process as two principals (docs/security.md).
     */
    username_env: EnvName.optional().describe(
      "Environment variable holding the collector's own MQTT user name (default mqtt.username_env)",
    ),
    password_env: EnvName.optional().describe(
      "Environment variable holding the collector's own MQTT password (default mqtt.password_env)",
    ),
  })
  .strict();
export type CollectorConfig = z.infer<typeof CollectorConfig>;

const ProxyAddress = z.string().refine((s) => {
  const [ip, bits, extra] = s.split('/');
  if (extra !== undefined || !ip || !isIP(ip)) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (isIP(ip) === 4 ? 32 : 128);
}, 'trusted proxies are IP addresses or CIDR ranges, e.g. 10.0.0.5 or 172.18.0.0/16');

/** Sign-in throttling: lockout with exponential backoff per account and per client address. */
export const SignInConfig = z
  .object({
    /** Wrong passwords for one account within `window_s` before it is locked. */
    max_failures: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe('Wrong passwords for one account within window_s before it is locked'),
    /** Failed sign-ins (password or token) from one address within `window_s` before it is locked. */
    max_failures_per_address: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('Failed sign-ins (password or token) from one client address within window_s before it is locked'),
    /** Account registrations from one address within `window_s` before it is locked. */
    max_registrations_per_address: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe('Account registrations from one client address within window_s before it is locked'),
    window_s: z.number().positive().default(900).describe('Window in which failures are counted, seconds'),
    /** The first lockout; each further one doubles, up to `max_lockout_s`. */
    lockout_s: z
      .number()
      .positive()
      .default(30)
      .describe('First lockout, seconds; each further one doubles up to max_lockout_s'),
    max_lockout_s: z.number().positive().default(3600).describe('Longest lockout, seconds'),
  })
  .strict();

/** The HTTP server: API, web page, sign-in limits, bundle quota. */
export const HttpConfig = z
  .object({
    port: z.number().int().min(0).max(65535).default(8080).describe('HTTP API and web pages port'),
    /** Loopback by default: a site opens it on purpose (a LAN address, or 0.0.0.0 behind a proxy or in a container). */
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe(
        "Address the HTTP server (and a standalone collector's health port) listens on; loopback by default, set a LAN address or 0.0.0.0 to open it on purpose",
      ),
    /**
     * Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and
     * `X-Forwarded-Proto` are believed (client address for throttling, `Secure`
     * cookies). Empty: those headers are ignored.
     */
    trusted_proxies: z
      .array(ProxyAddress)
      .default([])
      .describe(
        'Reverse proxies (IP addresses or CIDR ranges) whose X-Forwarded-For / X-Forwarded-Proto are believed; empty: those headers are ignored',
      ),
    /** Serve HTTPS directly (PEM files; paths as given, relative to the working folder). Usually a reverse proxy does this. */
    tls: z
      .object({
        cert_file: z.string().min(1).describe('PEM certificate (chain) file'),
        key_file: z.string().min(1).describe('PEM private key file'),
      })
      .strict()
      .optional()
      .describe('Serve HTTPS directly (usually a reverse proxy does this)'),
    sign_in: SignInConfig.default(SignInConfig.parse({})).describe(
      'Sign-in throttling: lockout with exponential backoff per account and per client address',
    ),
    /** Self-registered accounts waiting for approval; beyond it registration is refused. */
    max_pending_registrations: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe('Self-registered accounts waiting for approval; beyond it registration is refused'),
    /** Whole-experiment zips per user: being prepared at once, and bytes kept (running + ready). */
    bundles: z
      .object({
        max_running_per_user: z
          .number()
          .int()
          .min(1)
          .default(2)
          .describe('Whole-experiment zips one user may have prepared at once'),
        max_bytes_per_user: z
          .number()
          .int()
          .min(1)
          .default(20 * 1024 ** 3)
          .describe('Bytes of zips (running and ready) one user may keep'),
      })
      .strict()
      .default({ max_running_per_user: 2, max_bytes_per_user: 20 * 1024 ** 3 })
      .describe('Per-user quota of whole-experiment zip bundles'),
  })
  .strict();
export type HttpConfig = z.infer<typeof HttpConfig>;

export const Config = z
  .object({
    gateway: z
      .object({
        id: ChamberId.default('gw1').describe(
          'Gateway id: an MQTT topic level; several gateways on one broker need different ids',
        ),
      })
      .strict()
      .default({ id: 'gw1' })
      .describe('This gateway'),
    data_dir: z
      .string()
      .default('./data')
      .describe('Folder of all state: spool, accounts, audit log, experiments (relative to the working directory)'),
    /** Extra folders searched for profiles (drivers/ is always searched). */
    profile_dirs: z
      .array(z.string())
      .default([])
      .describe(
        'Extra folders searched for device profiles (<dir>/<kind>/*.yaml or <dir>/*.yaml; drivers/ is always searched), relative to the configuration file',
      ),
    mqtt: MqttConfig.default(MqttConfig.parse({})).describe('MQTT broker: embedded (default) or external'),
    spool: SpoolConfig.default(SpoolConfig.parse({})).describe(
      'Disk spool of the gateway while the broker is unreachable',
    ),
    http: HttpConfig.default(HttpConfig.parse({})).describe(
      'HTTP API and web pages: address, TLS, trusted proxies, sign-in limits, bundle quota',
    ),
    simulator: SimulatorConfig.default(SimulatorConfig.parse({})).describe('Simulated chambers for demos and tests'),
    collector: CollectorConfig.default(CollectorConfig.parse({})).describe(
      'The collector: MQTT data to InfluxDB and the NetCDF archive',
    ),
    influx: InfluxConfig.default(InfluxConfig.parse({})).describe(
      'InfluxDB sink of the collector (off unless url is set)',
    ),
    experiments: ExperimentsConfig.default(ExperimentsConfig.parse({})).describe(
      'Experiments and their NetCDF archive',
    ),
    facility: FacilityConfig.default(FacilityConfig.parse({})).describe(
      'The facility: institution, publisher, naming authority, licence default, platform and location written into every NetCDF file (ACDD-1.3 global attributes)',
    ),
    alarms: AlarmsConfig.default(AlarmsConfig.parse({})).describe(
      'Live alarms evaluated by the collector: classes, delays, severities, webhooks (docs/alarms.md)',
    ),
    chambers: z
      .array(Chamber)
      .default([])
      .describe('The climate chambers: one PLC each, with its driver, endpoint and profile'),
  })
  .strict();
export type Config = z.infer<typeof Config>;
