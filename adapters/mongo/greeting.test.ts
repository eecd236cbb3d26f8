import { describe, expect, it } from 'vitest';
import { testUrls } from '../../infra/test-infra/isolation.ts';
import { assertNoServerSpeaksFirst, hostsOf } from './greeting.ts';
import { MongoReadModelStore } from './read-model-store.ts';

const { mongoUrl, mysqlUrl } = testUrls();

describe('a MONGO_URL naming another kind of server', () => {
  it('is refused at once when that server speaks first (MariaDB greets every client)', async () => {
    const mariadb = new URL(mysqlUrl);
    const started = Date.now();
    await expect(MongoReadModelStore.connect(`mongodb://${mariadb.host}/x`, 'x')).rejects.toThrow(
      /spoke first .*as a MongoDB server never does/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('lets a MongoDB server, which waits to be asked, through', async () => {
    await expect(assertNoServerSpeaksFirst(mongoUrl)).resolves.toBeUndefined();
  });

  it('reads every host of a URL, and none of an SRV one', () => {
    expect(hostsOf('mongodb://user:p%40ss@db1:27018,db2,[::1]:27019/tradecore?replicaSet=rs0')).toEqual([
      { host: 'db1', port: 27018 },
      { host: 'db2', port: 27017 },
      { host: '::1', port: 27019 },
    ]);
    expect(hostsOf('mongodb+srv://cluster.example.com/tradecore')).toEqual([]);
  });
});
