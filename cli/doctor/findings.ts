/** One thing `tollgate doctor` found: a stable id, how bad it is, what it means and how to fix it. */
export interface Finding {
  id: string;
  severity: 'ok' | 'warning' | 'error';
  message: string;
  /** What to do about it; absent when nothing needs doing. */
  fix?: string;
}

export const ok = (id: string, message: string): Finding => ({ id, severity: 'ok', message });
export const warning = (id: string, message: string, fix: string): Finding => ({ id, severity: 'warning', message, fix });
export const error = (id: string, message: string, fix: string): Finding => ({ id, severity: 'error', message, fix });
