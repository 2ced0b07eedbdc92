/**
 * Backup annotations (backup --annotation, annotate): user key/value pairs stored in the backup's
 * manifest ([metadata] annotation) and in its backup.info entry (backup-annotation). As in
 * pgBackRest, an empty value means "no such key": backup skips it, annotate removes the key, and a
 * backup left with no key stores no annotation at all.
 */
export type Annotation = Record<string, string>;

/** `changes` applied to `current` (not modified); undefined when no key is left. */
export function annotationApply(current: Readonly<Annotation> | undefined, changes: Readonly<Annotation>): Annotation | undefined {
  const out: Annotation = { ...current };
  for (const [key, value] of Object.entries(changes)) {
    if (value === "") delete out[key];
    else out[key] = value;
  }
  return Object.keys(out).length ? out : undefined;
}
