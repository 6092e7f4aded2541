"""Adam minimisation of a small pytree inside one jitted fori_loop (latent controls, latent LSTM)."""
import jax
import optax


def adam_minimise(loss_fn, x0, steps: int, lr: float):
  """x* ~ argmin loss_fn(x) after `steps` Adam steps from x0 (any pytree). Returns (x, loss)."""
  tx = optax.adam(lr)

  @jax.jit
  def run(x0):
    def body(_, carry):
      x, st = carry
      upd, st = tx.update(jax.grad(loss_fn)(x), st, x)
      return optax.apply_updates(x, upd), st
    x, _ = jax.lax.fori_loop(0, steps, body, (x0, tx.init(x0)))
    return x, loss_fn(x)

  return run(x0)
