// Files embedded into the executable by `bun build --compile` (import ... with { type: "file" }).
declare module "*.so" {
  const path: string;
  export default path;
}
