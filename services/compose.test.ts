/**
 * No Docker engine runs here, so docker-compose.yml is checked by reading it: every service
 * can start (an image or a build, a healthcheck, healthy dependencies), its ports do not clash,
 * every `${VAR}` it uses has a placeholder in .env.example, and every tradecore service gets only
 * variables the config schema knows — and all the ones `tradecore serve` requires of it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_TEST_URLS } from '../infra/test-infra/isolation.ts';
import { checkServeConfig, isServiceName, SERVICES } from './cli/serve.ts';
import { ConfigSchema, loadConfig } from './shared/config.ts';

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }>;
  profiles?: string[];
}

const composeText = readFileSync(root('docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, ComposeService> };
const services = Object.entries(compose.services);
const tradecoreServices = services.filter(([, service]) => service.build !== undefined);

/** KEY=value lines of .env.example (comments are documentation, not placeholders). */
const envExample = Object.fromEntries(
  readFileSync(root('.env.example'), 'utf8')
    .split('\n')
    .map((line) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => [match[1], match[2]]),
) as Record<string, string>;

/** Every setting .env.example documents, set or commented out (`# BRAPI_TOKEN=`). */
const documented = new Set(
  [...readFileSync(root('.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map(
    (match) => match[1]!,
  ),
);

/** The settings that choose a server for an adapter (absent: embedded). */
const SERVER_URLS = new Set([
  'DATABASE_URL',
  'B3_DATABASE_URL',
  'ESDB_URL',
  'MYSQL_URL',
  'MONGO_URL',
  'REDIS_URL',
  'B3_REDIS_URL',
  'AMQP_URL',
  'KAFKA_BROKERS',
  'KAFKA_TOPIC_PREFIX',
]);

/** `.env` as the README says to make it: .env.example with its `change-me` placeholders changed. */
const userEnv = Object.fromEntries(
  Object.entries(envExample).map(([key, value]) => [key, value.replace(/^change-me/, 'chosen-by-the-user')]),
);

const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, from the given .env. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(INTERPOLATION, (_all, name: string, operator: string | undefined, rest: string) => {
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (operator?.endsWith('-')) return rest;
    if (operator?.endsWith('?')) throw new Error(`${name} is required: ${rest}`);
    return '';
  });
}

function hostPorts(service: ComposeService): Array<{ host: number; container: number; bind: string }> {
  return (service.ports ?? []).map((mapping) => {
    const parts = String(mapping).split(':');
    expect(parts, `port mapping "${mapping}" is ip:host:container`).toHaveLength(3);
    return { bind: parts[0] ?? '', host: Number(parts[1]), container: Number(parts[2]) };
  });
}

describe('docker-compose.yml', () => {
  it('runs the whole ecosystem: the servers, observability and every tradecore service', () => {
    const names = services.map(([name]) => name);
    const images = services.map(([, service]) => service.image ?? '');
    for (const expected of ['eventstoredb', 'kafka', 'rabbitmq', 'mysql', 'postgres', 'b3-core-db', 'mongo'])
      expect(names).toContain(expected);
    expect(images.filter((image) => image.startsWith('redis:'))).toHaveLength(2);
    expect(compose.services.kafka?.image).toMatch(/^apache\/kafka:3\.9/);
    expect(compose.services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(compose.services.rabbitmq?.image).toMatch(/-management$/);
    expect(compose.services.mysql?.image).toMatch(/^mysql:8/);
    expect(names).toEqual(expect.arrayContaining(['prometheus', 'grafana']));
    const served = tradecoreServices.map(([, service]) => service.command?.[1]);
    expect(served).toEqual(expect.arrayContaining([...SERVICES]));
  });

  it.each(services)('%s has an image or a build, pinned, and a healthcheck', (_name, service) => {
    expect(service.image ?? service.build).toBeDefined();
    if (service.image) expect(service.image).toMatch(/:[\w.-]+$/);
    expect(service.image ?? '').not.toMatch(/:latest$/);
    expect(service.healthcheck?.disable).not.toBe(true);
    expect(service.healthcheck?.test?.length ?? 0).toBeGreaterThan(0);
  });

  it('depends only on services that exist, once they are healthy', () => {
    for (const [name, service] of services)
      for (const [dependency, condition] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dependency], `${name} depends on ${dependency}`).toBeDefined();
        expect(compose.services[dependency]?.healthcheck, `${dependency} has a healthcheck`).toBeDefined();
        expect(condition.condition, `${name} → ${dependency}`).toBe('service_healthy');
      }
  });

  it('publishes each host port once, on the loopback, and keeps the test infrastructure’s ports', () => {
    const seen = new Map<number, string>();
    for (const [name, service] of services)
      for (const { host, bind } of hostPorts(service)) {
        expect(seen.get(host), `host port ${host} of ${name}`).toBeUndefined();
        seen.set(host, name);
        expect(bind, `${name} binds ${host} to the loopback only`).toBe('127.0.0.1');
      }
    const testPorts = Object.values(DEFAULT_TEST_URLS).map((url) =>
      Number(url.includes('://') ? new URL(url).port : url.split(':')[1]),
    );
    for (const port of testPorts) expect(seen.has(port), `test infrastructure port ${port}`).toBe(true);
    expect(seen.get(5432)).toBe('postgres');
    expect(seen.get(15672)).toBe('rabbitmq');
  });

  it('uses only variables .env.example documents', () => {
    const used = new Set([...composeText.matchAll(INTERPOLATION)].map((match) => match[1]!));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect([...documented], `\${${name}}`).toContain(name);
  });

  it('mounts the Prometheus and Grafana configuration that exists in infra/', () => {
    for (const name of ['prometheus', 'grafana'])
      for (const volume of compose.services[name]?.volumes ?? []) {
        const source = volume.split(':')[0] ?? '';
        if (source.startsWith('./')) expect(existsSync(root(source.slice(2))), source).toBe(true);
      }
    expect(compose.services.prometheus?.volumes).toContain(
      './infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
    expect(
      compose.services.grafana?.volumes?.some((volume) => volume.startsWith('./infra/grafana/provisioning:')),
    ).toBe(true);
  });

  it('has Prometheus scrape each tradecore service where it listens', () => {
    const prometheus = parse(readFileSync(root('infra/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{
        static_configs?: Array<{ targets: string[] }>;
        dns_sd_configs?: Array<{ names: string[]; port: number }>;
      }>;
    };
    const targets = prometheus.scrape_configs.flatMap((job) => [
      ...(job.static_configs ?? []).flatMap((config) => config.targets),
      ...(job.dns_sd_configs ?? []).flatMap((config) => config.names.map((name) => `${name}:${config.port}`)),
    ]);
    for (const [name, service] of tradecoreServices) {
      expect(targets, `Prometheus scrapes ${name}`).toContain(`${name}:${service.environment?.PORT}`);
    }
    for (const target of targets) {
      const [host, port] = target.split(':');
      const service = compose.services[host ?? ''];
      expect(service, `${target} is a compose service`).toBeDefined();
      expect(String(service?.environment?.PORT), target).toBe(port);
    }
  });

  describe.each(tradecoreServices)('tradecore service %s', (name, service) => {
    it('is the one image, run as `tradecore serve <service>` (or `start`)', () => {
      expect(service.build).toBe('.');
      expect(existsSync(root('Dockerfile'))).toBe(true);
      const [command, served] = service.command ?? [];
      if (command === 'serve') {
        expect(isServiceName(served), `${served} is a service`).toBe(true);
        expect(served).toBe(name);
      } else expect(service.command).toEqual(['start']);
    });

    it('gets every setting .env.example documents: a change in .env reaches it', () => {
      // The embedded all-in-one takes no server URL.
      const embedded = service.command?.[0] === 'start';
      const settings = Object.keys(ConfigSchema.shape).filter(
        (name) => documented.has(name) && !(embedded && SERVER_URLS.has(name)),
      );
      expect(settings.length).toBeGreaterThan(15);
      for (const name of settings) expect(Object.keys(service.environment ?? {}), name).toContain(name);
    });

    it('gets only variables the config schema knows', () => {
      const known = Object.keys(ConfigSchema.shape);
      for (const variable of Object.keys(service.environment ?? {}))
        expect(known, variable).toContain(variable);
    });

    it('listens on its PORT, the container port it publishes, on every interface', () => {
      const port = Number(service.environment?.PORT);
      expect(service.environment?.HOST).toBe('0.0.0.0');
      for (const mapping of hostPorts(service)) expect(mapping.container).toBe(port);
      expect(JSON.stringify(service.healthcheck?.test)).toContain(`127.0.0.1:${port}/health/ready`);
    });

    const environmentFrom = (env: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([key, value]) => [
          key,
          interpolate(String(value), env),
        ]),
      );

    it('starts with .env.example once its placeholders are changed: a valid config with every URL `tradecore serve` requires of it', () => {
      // Unchanged, the admin password and the JWT secret are everyone's: refused.
      expect(() => loadConfig(environmentFrom(envExample))).toThrow(
        'is still the placeholder from .env.example',
      );
      const config = loadConfig(environmentFrom(userEnv));
      const served = service.command?.[1];
      if (service.command?.[0] === 'serve' && isServiceName(served))
        expect(() => checkServeConfig(served, config)).not.toThrow();
      // The services share the admin account and verify each other's tokens.
      expect(config.jwtSecret).toBeDefined();
      expect(config.adminPassword).toBeDefined();
    });
  });
});
