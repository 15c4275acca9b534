/** Types for scripts/docx-package.js (a minimal .docx writer for the default template and test fixtures). */
export interface RunOptions { bold?: boolean; italic?: boolean; size?: number; color?: string; font?: string }
export interface ParaOptions { align?: 'left' | 'center' | 'right'; style?: string; keepNext?: boolean; spacingAfter?: number; spacingBefore?: number }
export interface CellOptions { width?: number; span?: number; fill?: string; align?: 'left' | 'center' | 'right' }
export function run(text: string, o?: RunOptions): string;
export function para(runs: string | string[], o?: ParaOptions): string;
export function cell(content: string | string[], o?: CellOptions): string;
export function row(cells: string[], o?: { header?: boolean }): string;
export function table(widths: number[], rows: string[], o?: { borders?: 'grid' | 'horizontal' | 'none'; borderColor?: string }): string;
export function esc(s: string): string;
export function docxPackage(o: { body: string; header?: string; footer?: string; title?: string }): Buffer;
