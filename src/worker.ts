/** Entry point of a Bun worker thread (a separate entry in the compiled executable). */
import { JOB_TABLE } from "./command/jobs.ts";
import { serveWorker } from "./worker/runtime.ts";

// Workers run long jobs: the normal JIT policy (the executable starts with it held back, build.ts).
Bun.unsafe.setJITPolicy(1);
serveWorker(JOB_TABLE);
