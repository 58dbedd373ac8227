/** The OpenAI-compatible HTTP server over the serving {@link dev.isthmus.engine.serving.Engine}. */
package dev.isthmus.server;
