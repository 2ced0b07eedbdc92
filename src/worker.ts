/** Entry point of a Bun worker thread (a separate entry in the compiled executable). */
import { JOB_TABLE } from "./job-table.ts";
import { serveWorker } from "./worker/runtime.ts";

serveWorker(JOB_TABLE);
