"""Tests of the LSTM-VAE with per-domain adaptors, on tiny sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctal_jax.models import LstmVae, init_params

DOMAINS = (("source", 3), ("target", 5))
SEQ_LEN = 5
LATENT = 2


def make_model(**overrides):
  fields = dict(domains=DOMAINS, width=4, hidden=8, latent=LATENT)
  fields.update(overrides)
  return LstmVae(**fields)


@pytest.fixture(scope="module")
def model():
  return make_model()


@pytest.fixture(scope="module")
def params(model):
  return init_params(jax.random.key(0), model, SEQ_LEN)


def windows(key, n, features, seq_len=SEQ_LEN):
  return jax.random.normal(key, (n, seq_len, features), jnp.float32)


def sigmoid(values):
  return 1.0 / (1.0 + np.exp(-values))


def numpy_decode(params, z, u_teacher=None):
  """Decode step by step in numpy with gate order (input, forget, output, cell)."""
  core = {name: jax.tree_util.tree_map(np.asarray, value) for name, value in params["core"].items()}
  z = np.asarray(z, np.float64)
  hidden = core["decoder"]["recurrent_kernel"].shape[0]
  width = core["step_output"]["kernel"].shape[1]

  state = z @ core["initial_state"]["kernel"] + core["initial_state"]["bias"]
  h, c = state[:, :hidden], state[:, hidden:]
  previous = np.zeros((z.shape[0], width))
  outputs = []
  for t in range(SEQ_LEN):
    step_input = np.concatenate([previous, z], axis=1)
    gates = (step_input @ core["decoder"]["input_kernel"] + h @ core["decoder"]["recurrent_kernel"]
             + core["decoder"]["bias"])
    input_gate = sigmoid(gates[:, :hidden])
    forget_gate = sigmoid(gates[:, hidden:2 * hidden])
    output_gate = sigmoid(gates[:, 2 * hidden:3 * hidden])
    candidate = np.tanh(gates[:, 3 * hidden:])
    c = forget_gate * c + input_gate * candidate
    h = output_gate * np.tanh(c)
    u_hat = h @ core["step_output"]["kernel"] + core["step_output"]["bias"]
    outputs.append(u_hat)
    previous = u_hat if u_teacher is None else np.asarray(u_teacher)[:, t]
  return np.stack(outputs, axis=1)


def test_parameter_tree_top_level(params):
  assert set(params) == {"core", "adaptors"}
  assert set(params["adaptors"]) == {"source", "target"}
  for domain in ("source", "target"):
    assert set(params["adaptors"][domain]) == {"encode", "decode"}
  assert set(params["core"]) == {
      "encoder", "mu", "logvar", "initial_state", "decoder", "step_output"}


def test_parameter_shapes_follow_domains(params):
  adaptors = params["adaptors"]
  assert adaptors["source"]["encode"]["kernel"].shape == (3, 4)
  assert adaptors["source"]["decode"]["kernel"].shape == (4, 3)
  assert adaptors["target"]["encode"]["kernel"].shape == (5, 4)
  assert adaptors["target"]["decode"]["kernel"].shape == (4, 5)
  assert params["core"]["encoder"]["input_kernel"].shape == (4, 32)
  assert params["core"]["decoder"]["input_kernel"].shape == (4 + LATENT, 32)
  assert params["core"]["step_output"]["kernel"].shape == (8, 4)


@pytest.mark.parametrize("domain, features", DOMAINS)
def test_shapes_per_domain(model, params, domain, features):
  variables = {"params": params}
  x = windows(jax.random.key(1), 6, features)
  mask = jnp.ones((6, SEQ_LEN))

  mu, logvar = model.apply(variables, x, mask, domain, method=LstmVae.encode)
  assert mu.shape == (6, LATENT)
  assert logvar.shape == (6, LATENT)

  x_hat = model.apply(variables, mu, SEQ_LEN, domain, method=LstmVae.decode)
  assert x_hat.shape == (6, SEQ_LEN, features)

  out = model.apply(variables, x, mask, domain, jnp.zeros((6, LATENT)))
  assert set(out) == {"mu", "logvar", "z", "x_hat"}
  assert out["x_hat"].shape == (6, SEQ_LEN, features)


def test_padded_window_matches_truncated(model, params):
  variables = {"params": params}
  x = windows(jax.random.key(2), 4, 5)
  mask = jnp.asarray(np.array([[1, 1, 1, 0, 0]] * 4, np.float32))

  mu_padded, logvar_padded = model.apply(variables, x, mask, "target", method=LstmVae.encode)
  mu_short, logvar_short = model.apply(
      variables, x[:, :3], jnp.ones((4, 3)), "target", method=LstmVae.encode)
  np.testing.assert_allclose(mu_padded, mu_short, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(logvar_padded, logvar_short, rtol=1e-6, atol=1e-6)


def test_padded_values_change_nothing(model, params):
  variables = {"params": params}
  x = windows(jax.random.key(3), 4, 5)
  mask = jnp.asarray(np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]] * 2, np.float32))
  padded = mask[..., None] == 0
  x_changed = jnp.where(padded, 1e3 * windows(jax.random.key(4), 4, 5), x)
  x_nan = jnp.where(padded, jnp.nan, x)

  mu, _ = model.apply(variables, x, mask, "target", method=LstmVae.encode)
  mu_changed, _ = model.apply(variables, x_changed, mask, "target", method=LstmVae.encode)
  mu_nan, _ = model.apply(variables, x_nan, mask, "target", method=LstmVae.encode)
  np.testing.assert_array_equal(mu, mu_changed)
  np.testing.assert_array_equal(mu, mu_nan)


def test_windows_of_different_lengths_differ(model, params):
  variables = {"params": params}
  x = jnp.repeat(windows(jax.random.key(5), 1, 5), 2, axis=0)
  mask = jnp.asarray(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32))
  mu, _ = model.apply(variables, x, mask, "target", method=LstmVae.encode)
  assert not np.allclose(mu[0], mu[1])


def test_z_follows_eps(model, params):
  variables = {"params": params}
  x = windows(jax.random.key(6), 3, 3)
  mask = jnp.ones((3, SEQ_LEN))
  eps = jax.random.normal(jax.random.key(7), (3, LATENT))

  at_mean = model.apply(variables, x, mask, "source", jnp.zeros((3, LATENT)))
  np.testing.assert_array_equal(at_mean["z"], at_mean["mu"])

  sampled = model.apply(variables, x, mask, "source", eps)
  expected = sampled["mu"] + np.exp(0.5 * np.asarray(sampled["logvar"])) * np.asarray(eps)
  np.testing.assert_allclose(sampled["z"], expected, rtol=1e-6)


def test_autoencoder_ignores_eps():
  model = make_model(variational=False)
  params = init_params(jax.random.key(8), model, SEQ_LEN)
  assert "logvar" not in params["core"]

  x = windows(jax.random.key(9), 3, 3)
  mask = jnp.ones((3, SEQ_LEN))
  out = model.apply({"params": params}, x, mask, "source", jnp.ones((3, LATENT)))
  np.testing.assert_array_equal(out["z"], out["mu"])
  np.testing.assert_array_equal(out["logvar"], np.zeros((3, LATENT)))


def test_decode_matches_step_loop(model, params):
  z = jax.random.normal(jax.random.key(10), (4, LATENT))
  x_hat = model.apply({"params": params}, z, SEQ_LEN, "source", method=LstmVae.decode)

  u_hat = numpy_decode(params, z)
  adaptor = params["adaptors"]["source"]["decode"]
  expected = u_hat @ np.asarray(adaptor["kernel"]) + np.asarray(adaptor["bias"])
  np.testing.assert_allclose(x_hat, expected, rtol=1e-4, atol=1e-5)


def test_teacher_forcing_feeds_true_inputs():
  model = make_model(teacher_forcing=True)
  params = init_params(jax.random.key(11), model, SEQ_LEN)
  variables = {"params": params}
  z = jax.random.normal(jax.random.key(12), (4, LATENT))
  x = windows(jax.random.key(13), 4, 3)

  x_hat = model.apply(variables, z, SEQ_LEN, "source", teacher=x, method=LstmVae.decode)

  encode = params["adaptors"]["source"]["encode"]
  u_teacher = np.asarray(x) @ np.asarray(encode["kernel"]) + np.asarray(encode["bias"])
  decode = params["adaptors"]["source"]["decode"]
  u_hat = numpy_decode(params, z, u_teacher)
  expected = u_hat @ np.asarray(decode["kernel"]) + np.asarray(decode["bias"])
  np.testing.assert_allclose(x_hat, expected, rtol=1e-4, atol=1e-5)

  free_running = model.apply(variables, z, SEQ_LEN, "source", method=LstmVae.decode)
  assert not np.allclose(x_hat, free_running)


def test_teacher_ignored_when_forcing_off(model, params):
  variables = {"params": params}
  z = jax.random.normal(jax.random.key(14), (2, LATENT))
  x = windows(jax.random.key(15), 2, 3)
  with_teacher = model.apply(variables, z, SEQ_LEN, "source", teacher=x, method=LstmVae.decode)
  without = model.apply(variables, z, SEQ_LEN, "source", method=LstmVae.decode)
  np.testing.assert_array_equal(with_teacher, without)


def test_unknown_domain_raises(model, params):
  x = windows(jax.random.key(16), 2, 3)
  with pytest.raises(ValueError, match="Unknown domain 'sink'"):
    model.apply({"params": params}, x, jnp.ones((2, SEQ_LEN)), "sink", method=LstmVae.encode)


def test_wrong_width_raises(model, params):
  x = windows(jax.random.key(17), 2, 5)
  with pytest.raises(ValueError, match="expected 3"):
    model.apply({"params": params}, x, jnp.ones((2, SEQ_LEN)), "source", method=LstmVae.encode)
