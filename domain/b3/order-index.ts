/**
 * The order book's index of orders by id: an open-addressing hash table (linear probing) that keeps
 * each entry's hash in a typed array next to its slot.
 *
 * Why not a `Map<string, …>`: on a miss (the duplicate check of every new order) and on a collision,
 * a Map compares the id with each string in its bucket chain, and each of those reads is a cache
 * miss once the book holds thousands of orders. Here a lookup compares 32-bit hashes in one typed
 * array and reads an id string only when the hashes are equal, which is almost always the id wanted.
 * Deletion shifts the entries after it back (no tombstones), so the table never needs a rehash to
 * clean up after the churn of a busy book.
 */
export class OrderIndex<Entry extends { readonly id: string }> {
  /** A power of two, at least twice the number of entries. */
  private capacity = 0;
  /** Each slot's hash, 0 when the slot is empty (`hashOf` never returns 0). */
  private hashes = new Int32Array(0);
  private entries: (Entry | undefined)[] = [];
  private count = 0;

  constructor(initialCapacity = 1024) {
    this.allocate(initialCapacity);
  }

  get size(): number {
    return this.count;
  }

  get(id: string): Entry | undefined {
    const hashes = this.hashes;
    const mask = this.capacity - 1;
    const hash = hashOf(id);
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const slotHash = hashes[slot]!;
      if (slotHash === 0) return undefined;
      if (slotHash === hash) {
        const entry = this.entries[slot]!;
        if (entry.id === id) return entry;
      }
    }
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Adds an entry whose id is not in the index yet. */
  add(entry: Entry): void {
    if ((this.count + 1) * 2 > this.capacity) this.grow();
    this.insert(hashOf(entry.id), entry);
    this.count++;
  }

  delete(id: string): boolean {
    const hashes = this.hashes;
    const entries = this.entries;
    const mask = this.capacity - 1;
    const hash = hashOf(id);
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const slotHash = hashes[slot]!;
      if (slotHash === 0) return false;
      if (slotHash === hash && entries[slot]!.id === id) break;
    }
    // Backward-shift deletion: move back every later entry of the run that may sit in the freed slot.
    let free = slot;
    for (let next = (free + 1) & mask; hashes[next] !== 0; next = (next + 1) & mask) {
      const home = hashes[next]! & mask;
      // The entry at `next` may move to `free` unless its home slot lies cyclically in (free, next].
      const staysPut = free <= next ? free < home && home <= next : free < home || home <= next;
      if (staysPut) continue;
      hashes[free] = hashes[next]!;
      entries[free] = entries[next];
      free = next;
    }
    hashes[free] = 0;
    entries[free] = undefined;
    this.count--;
    return true;
  }

  *values(): IterableIterator<Entry> {
    for (const entry of this.entries) if (entry !== undefined) yield entry;
  }

  private insert(hash: number, entry: Entry): void {
    const mask = this.capacity - 1;
    let slot = hash & mask;
    while (this.hashes[slot] !== 0) slot = (slot + 1) & mask;
    this.hashes[slot] = hash;
    this.entries[slot] = entry;
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.hashes = new Int32Array(capacity);
    this.entries = new Array<Entry | undefined>(capacity).fill(undefined);
  }

  private grow(): void {
    const hashes = this.hashes;
    const entries = this.entries;
    this.allocate(this.capacity * 2);
    for (let slot = 0; slot < hashes.length; slot++)
      if (hashes[slot] !== 0) this.insert(hashes[slot]!, entries[slot]!);
  }
}

/** FNV-1a over the UTF-16 code units, then mixed so the low bits (the home slot) spread; never 0 (an empty slot). */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < id.length; index++) hash = Math.imul(hash ^ id.charCodeAt(index), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash === 0 ? 1 : hash;
}
