import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalFileStorage, newStorageKey } from '../../plugin/services/storage';

let root: string;
let storage: LocalFileStorage;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'crm-storage-'));
  storage = new LocalFileStorage(root);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const readAll = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};
const filesUnder = (dir: string): string[] => fs.readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name))).sort();

describe('local file storage', () => {
  test('bytes are stored under their key, in a directory made on first use, counted and hashed', async () => {
    const key = newStorageKey();
    const bytes = crypto.randomBytes(70_000);
    const stored = await storage.put(key, bytes);
    expect(stored).toEqual({ size: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') });
    expect(filesUnder(root)).toEqual([path.join(key.slice(0, 2), key)]);
    expect((await readAll(await storage.get(key))).equals(bytes)).toBe(true);
    // A second key in the same directory, now there.
    const sibling = key.slice(0, 2) + newStorageKey().slice(2);
    await storage.put(sibling, Buffer.from('second'));
    expect((await readAll(await storage.get(sibling))).toString()).toBe('second');
  });

  test('a key already stored is never written over: the put fails and the first file stays', async () => {
    const key = newStorageKey();
    await storage.put(key, Buffer.from('first'));
    await expect(storage.put(key, Buffer.from('second'))).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(storage.put(key, Readable.from([Buffer.from('third')]))).rejects.toMatchObject({ code: 'EEXIST' });
    expect((await readAll(await storage.get(key))).toString()).toBe('first');
    expect(filesUnder(root)).toEqual([path.join(key.slice(0, 2), key)]);
  });

  test('a stream that fails halfway leaves nothing under its key, nor a part file', async () => {
    const key = newStorageKey();
    async function* breaking() {
      yield Buffer.alloc(64 * 1024, 1);
      throw new Error('connection dropped');
    }
    await expect(storage.put(key, Readable.from(breaking()))).rejects.toThrow('connection dropped');
    expect(filesUnder(root)).toEqual([]);
    await expect(storage.get(key)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('bytes that cannot be written leave nothing behind and report why', async () => {
    const key = newStorageKey();
    // The key's directory is taken by a file: neither the write nor making the directory can succeed.
    fs.writeFileSync(path.join(root, key.slice(0, 2)), 'in the way');
    await expect(storage.put(key, Buffer.from('document'))).rejects.toMatchObject({ code: expect.stringMatching(/ENOTDIR|EEXIST/) });
    expect(filesUnder(root)).toEqual([key.slice(0, 2)]);
  });

  test('deleting removes the file; deleting a key that is not there is not an error; keys are checked', async () => {
    const key = newStorageKey();
    await storage.put(key, Buffer.from('gone soon'));
    await storage.delete(key);
    await storage.delete(key);
    await expect(storage.get(key)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(storage.put('../escape', Buffer.from('x'))).rejects.toThrow(/Not a storage key/);
  });
});
