import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** Small building blocks every page uses. */

let navigateTo: (path: string) => void = (path) => {
  history.pushState(null, '', path);
};

export function setNavigator(fn: (path: string) => void): void {
  navigateTo = fn;
}

export function navigate(path: string): void {
  navigateTo(path);
}

/** An in-app link: a real href (open in a new tab works), routed without a page load. */
export function Link({ href, children, class: cls }: { href: string; children: ComponentChildren; class?: string }) {
  return (
    <a
      href={href}
      class={cls}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

export function when(iso: string | null): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge badge-${state}`}>{state}</span>;
}

/** Loads `load()` whenever `deps` change; returns [value, error, reload]. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | undefined, unknown, () => void] {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setError(null);
    load().then(
      (v) => live && setValue(v),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return [value, error, () => setTick((t) => t + 1)];
}

export interface ConfirmRequest {
  title: string;
  /** What will happen, spelled out. */
  consequence: string;
  action: string;
  danger?: boolean;
  /** Ask for a reason (kept in the audit trail). */
  reason?: boolean;
  run: (reason: string) => Promise<void>;
}

/** A modal confirmation: nothing happens until the person presses the named action. */
export function Confirm({ request, onClose }: { request: ConfirmRequest | null; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (request && !d.open) {
      setReason('');
      setError(null);
      d.showModal();
    }
    if (!request && d.open) d.close();
  }, [request]);
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" onClose={onClose}>
      {request && (
        <form
          method="dialog"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            try {
              await request.run(reason);
              onClose();
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          <p class="consequence">{request.consequence}</p>
          {request.reason && (
            <p>
              <label for="confirm-reason">Reason (kept in the audit trail)</label>
              <input id="confirm-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={200} />
            </p>
          )}
          <ErrorBox error={error} />
          <div class="buttons">
            <button type="button" class="secondary" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" class={request.danger ? 'danger' : ''} disabled={busy}>
              {request.action}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/** Previous/next over opaque cursors: the cursors of the pages seen so far are kept to go back. */
export function usePager(resetKey: string): { cursor: string | undefined; back: (() => void) | null; forward: (next: string) => void; page: number } {
  const [stack, setStack] = useState<string[]>([]);
  useEffect(() => setStack([]), [resetKey]);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length + 1,
    back: stack.length > 0 ? () => setStack((s) => s.slice(0, -1)) : null,
    forward: (next) => setStack((s) => [...s, next]),
  };
}

export function Pager({ pager, next }: { pager: ReturnType<typeof usePager>; next: string | null | undefined }) {
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled={!pager.back} onClick={() => pager.back?.()}>
        Previous
      </button>
      <span>Page {pager.page}</span>
      <button type="button" class="secondary" disabled={!next} onClick={() => next && pager.forward(next)}>
        Next
      </button>
    </nav>
  );
}

/** Copies `text`, and says so next to the button. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="secondary"
      onClick={async () => {
        await navigator.clipboard.writeText(text);
        setDone(true);
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

/** Offers `blob` as a download named `name`. */
export function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The text of a file the person picked. */
export function readFile(input: HTMLInputElement): Promise<string[]> {
  return Promise.all([...(input.files ?? [])].map((file) => file.text()));
}
