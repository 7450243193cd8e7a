// nodejs20.x handlers served by Portway's Node shim.
let calls = 0;

exports.asyncHandler = async (event, context) => {
  calls += 1;
  if (event.fail) throw new TypeError(event.fail);
  return { event, requestId: context.awsRequestId, arn: context.invokedFunctionArn, calls,
           remainingOk: context.getRemainingTimeInMillis() > 0 };
};

exports.callbackHandler = (event, context, callback) => {
  if (event.fail) return callback(new Error(event.fail));
  setImmediate(() => callback(null, { callback: true, event }));
};

exports.sleepy = async (event) => new Promise((resolve) => setTimeout(() => resolve("late"), event.ms));

exports.hog = async () => {
  const kept = [];
  for (let i = 0; i < 4096; i += 1) kept.push(Buffer.alloc(1 << 20, 1)); // 4 GB, far past memorySize
  return kept.length;
};

// A promise nobody awaits rejects while the invocation is still running.
exports.rejectsLater = async (event) => {
  if (event.ok) return "fine";
  Promise.reject(new Error("stray"));
  return new Promise((resolve) => setTimeout(() => resolve("too late"), 2000));
};
