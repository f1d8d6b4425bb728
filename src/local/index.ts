// What runs on this machine: the Maven-fetched broker, the engine as a child process, free ports.
export { BrokerSetupError, brokerStatus, startBroker, stopBroker, toolCommand, waitForBroker } from "./broker.ts";
export { EngineProcess } from "./engine-process.ts";
export { freePort } from "./ports.ts";
