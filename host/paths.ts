import fs from 'node:fs';
import path from 'node:path';

/** The repository root, whether this file runs from source (jest) or from dist/ (npm start). */
function findRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const ROOT = findRoot(__dirname);
export const HOST_VIEWS = path.join(ROOT, 'host', 'views');
export const HOST_PUBLIC = path.join(ROOT, 'host', 'public');
