import type { JsMsg } from '@sluice/bus';

/**
 * Sends a settled task's ack together with the next pull request, in one socket write. The ack
 * goes out after the task's outcome is stored, like any ack; what changes is when the client
 * writes it: a task's end frees a slot, its lane asks for the next task a few microtasks later,
 * and an ack sent at once had already been flushed on its own (strace of a real run: 137 acks
 * and 137 pull requests in 5 s, each its own write). A pull sent by any lane carries every ack
 * waiting (one connection); with no pull in the same turn, the acks go out on the next
 * macrotask (`setImmediate`), so none waits longer than that.
 */
export class AckBatcher {
  private pending: JsMsg[] = [];
  private scheduled = false;

  /** Acks `msg` with the next pull request, or on the next macrotask when none comes. */
  ack(msg: JsMsg): void {
    this.pending.push(msg);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Sends every ack waiting (just after a pull request: the client writes them together). */
  flush(): void {
    if (this.pending.length === 0) return;
    const msgs = this.pending;
    this.pending = [];
    for (const msg of msgs) msg.ack();
  }
}
