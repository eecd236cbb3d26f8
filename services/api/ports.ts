/**
 * What the API needs from the read side, declared here (ports next to the code that needs them).
 * `projections/read-models/queries.ts` (`createReadModels`) and `services/shared/read-models.ts`
 * (`startProjections`) implement them; amounts are integer cents, converted to decimal strings here.
 */

export interface Page<Item> {
  items: Item[];
  nextCursor?: string;
}

/** A read-model row; its money fields are integer cents. */
export type Row = object;

/** A book's depth row: the B3 engine's status of the book, and why it halted it. */
export interface BookRow {
  status?: string;
  haltReason?: string | null;
}

/** A catalogue entry of the instruments read model; its tick size and reference price are cents. */
export interface InstrumentRow {
  symbol: string;
  name: string;
  lotSize: number;
  tickSize: number;
  fractionalSymbol: string | null;
  referencePrice: number;
  status: 'OPEN' | 'HALTED';
  haltReason: string | null;
}

export interface ReadModels {
  wallet(accountId: string): Promise<Row | undefined | null>;
  order(orderId: string): Promise<Row | undefined | null>;
  orders(query: {
    accountId?: string;
    status?: string;
    symbol?: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<Row>>;
  trades(query: { symbol?: string; accountId?: string; limit: number; cursor?: string }): Promise<Page<Row>>;
  /** The instrument catalogue by ticker, optionally only the instruments with that status. */
  instruments(query: {
    status?: 'OPEN' | 'HALTED';
    limit: number;
    cursor?: string;
  }): Promise<Page<InstrumentRow>>;
  book(symbol: string, depth: number): Promise<BookRow | undefined | null>;
  quote(symbol: string): Promise<Row | undefined | null>;
  quotes?(symbol: string, query: { limit: number; cursor?: string }): Promise<Page<Row>>;
  candles(symbol: string, interval: string, from: Date, to: Date): Promise<Row[] | Page<Row>>;
  trace?(correlationId: string): Promise<Row[] | Page<Row>>;
  /**
   * One page of a correlation id's events from the audit timeline, and the event-store position
   * each store's timeline included when it was read (`projections/read-models/audit-trace.ts`).
   */
  auditTrace?(
    correlationId: string,
    query: { limit: number; cursor?: string },
  ): Promise<Page<AuditEntryRow> & { through: { broker: number; b3: number } }>;
}

/** An audit timeline entry as the audit routes read it. */
export interface AuditEntryRow {
  store: 'broker' | 'b3';
  eventId: string;
  streamId: string;
  version: number;
  position: number;
  type: string;
  recordedAt: Date;
  metadata: Record<string, unknown>;
  data: unknown;
}

export interface ProjectionsControl {
  /** The projections by name, when known: a rebuild of another name is a 404. */
  readonly projectors?: ReadonlyMap<string, unknown>;
  status(): Promise<unknown> | unknown;
  /** `onProgress` hears how far each read model's rebuild is (position, head, events/s, ETA). */
  rebuild(name: string, onProgress?: (progress: { projection: string }) => void): Promise<unknown>;
  /**
   * Resolves once read model `name` includes its store's events up to `position`, where this
   * process runs it; undefined when it already does; absent where the read models are projected
   * elsewhere.
   */
  applied?(name: string, position: number): Promise<void> | undefined;
  stop(): Promise<void>;
}

/** One dependency `/health/ready` checks: resolves when reachable, throws (or rejects) when not. */
export type ReadinessCheck = () => Promise<unknown>;
