/** Entry point of a Bun worker thread (a separate entry in the compiled executable). */
import { installRemote } from "./command/remote-factory.ts";
import { JOB_TABLE } from "./job-table.ts";
import { serveWorker } from "./worker/runtime.ts";

// Workers run long jobs: the normal JIT policy (the executable starts with it held back, build.ts).
Bun.unsafe.setJITPolicy(1);
// Workers open repoN-host / pgN-host storage themselves (their own SSH session each).
installRemote();
serveWorker(JOB_TABLE);
