import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (testkit lives in packages/testkit/{src,dist}). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MIGRATIONS_DIR = path.join(REPO_ROOT, 'migrations');

export function serviceEntry(name: 'planner' | 'executor' | 'reporter'): string {
  return path.join(REPO_ROOT, 'services', name, 'dist', 'main.js');
}
