/**
 * Helpers for the Kafka integration tests: a client on the test broker, reading topics back,
 * and bounded waits. Not for production code.
 */
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { decodeHeaders } from './consumer.ts';

export function testKafka(clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [...testUrls().kafkaBrokers],
    // Some tests crash consumers on purpose; their error logs would only be noise.
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
}

/** Short group timeouts so joins, leaves and rebalances stay quick on a two-core machine. */
export const FAST_GROUP = {
  sessionTimeout: 6_000,
  rebalanceTimeout: 6_000,
  heartbeatInterval: 500,
  maxWaitTimeInMs: 100,
} as const;

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | undefined;
  value: unknown;
  headers: Record<string, string>;
}

/** How many messages the topics hold (high minus low watermark, every partition). */
export async function countMessages(admin: Admin, topics: string[]): Promise<number> {
  let total = 0;
  for (const topic of topics) {
    for (const partition of await admin.fetchTopicOffsets(topic))
      total += Number(partition.high) - Number(partition.low);
  }
  return total;
}

/** Reads every message of the topics from the beginning with a throwaway group, in partition order. */
export async function readTopics(kafka: Kafka, topics: string[], timeoutMs = 20_000): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const expected = await countMessages(admin, topics).finally(() => admin.disconnect());
  const received: ReadMessage[] = [];
  if (expected === 0) return received;
  const consumer = kafka.consumer({ groupId: isolatedName('read'), ...FAST_GROUP });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${expected} messages in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            received.push({
              topic,
              partition,
              offset: Number(message.offset),
              key: message.key?.toString(),
              value: message.value ? JSON.parse(message.value.toString()) : null,
              headers: decodeHeaders(message.headers),
            });
            if (received.length >= expected) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

export async function until(
  condition: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Groups messages by key, each key's messages in the order its partition holds them. */
export function byKey(messages: ReadMessage[]): Map<string, ReadMessage[]> {
  const groups = new Map<string, ReadMessage[]>();
  for (const message of [...messages].sort((a, b) => a.offset - b.offset)) {
    const key = `${message.topic}/${message.key}`;
    groups.set(key, [...(groups.get(key) ?? []), message]);
  }
  return groups;
}
