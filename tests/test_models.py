"""Tests of the LSTM-VAE with per-domain adaptors, on tiny sizes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctal_jax.models import LstmVae, init_params, lstm

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


# Jitted entry points: one compile per shape runs faster here than eager dispatch.
@functools.partial(jax.jit, static_argnames=("model", "domain"))
def encode(model, params, x, mask, domain):
  return model.apply({"params": params}, x, mask, domain, method=LstmVae.encode)


@functools.partial(jax.jit, static_argnames=("model", "domain"))
def decode(model, params, z, domain, teacher=None):
  return model.apply({"params": params}, z, SEQ_LEN, domain, teacher=teacher,
                     method=LstmVae.decode)


@functools.partial(jax.jit, static_argnames=("model", "domain"))
def forward(model, params, x, mask, domain, eps):
  return model.apply({"params": params}, x, mask, domain, eps)


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
  x = windows(jax.random.key(1), 6, features)
  mask = jnp.ones((6, SEQ_LEN))

  mu, logvar = encode(model, params, x, mask, domain)
  assert mu.shape == (6, LATENT)
  assert logvar.shape == (6, LATENT)

  x_hat = decode(model, params, mu, domain)
  assert x_hat.shape == (6, SEQ_LEN, features)

  out = forward(model, params, x, mask, domain, jnp.zeros((6, LATENT)))
  assert set(out) == {"mu", "logvar", "z", "x_hat"}
  assert out["x_hat"].shape == (6, SEQ_LEN, features)


def test_padded_window_matches_truncated(model, params):
  x = windows(jax.random.key(2), 4, 5)
  mask = jnp.asarray(np.array([[1, 1, 1, 0, 0]] * 4, np.float32))

  mu_padded, logvar_padded = encode(model, params, x, mask, "target")
  mu_short, logvar_short = encode(model, params, x[:, :3], jnp.ones((4, 3)), "target")
  np.testing.assert_allclose(mu_padded, mu_short, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(logvar_padded, logvar_short, rtol=1e-6, atol=1e-6)


def test_padded_values_change_nothing(model, params):
  x = windows(jax.random.key(3), 4, 5)
  mask = jnp.asarray(np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]] * 2, np.float32))
  padded = mask[..., None] == 0
  x_changed = jnp.where(padded, 1e3 * windows(jax.random.key(4), 4, 5), x)
  x_nan = jnp.where(padded, jnp.nan, x)

  mu, _ = encode(model, params, x, mask, "target")
  mu_changed, _ = encode(model, params, x_changed, mask, "target")
  mu_nan, _ = encode(model, params, x_nan, mask, "target")
  np.testing.assert_array_equal(mu, mu_changed)
  np.testing.assert_array_equal(mu, mu_nan)


def test_windows_of_different_lengths_differ(model, params):
  x = jnp.repeat(windows(jax.random.key(5), 1, 5), 2, axis=0)
  mask = jnp.asarray(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32))
  mu, _ = encode(model, params, x, mask, "target")
  assert not np.allclose(mu[0], mu[1])


def test_z_follows_eps(model, params):
  x = windows(jax.random.key(6), 3, 3)
  mask = jnp.ones((3, SEQ_LEN))
  eps = jax.random.normal(jax.random.key(7), (3, LATENT))

  at_mean = forward(model, params, x, mask, "source", jnp.zeros((3, LATENT)))
  np.testing.assert_array_equal(at_mean["z"], at_mean["mu"])

  sampled = forward(model, params, x, mask, "source", eps)
  expected = sampled["mu"] + np.exp(0.5 * np.asarray(sampled["logvar"])) * np.asarray(eps)
  np.testing.assert_allclose(sampled["z"], expected, rtol=1e-6)


def test_autoencoder_ignores_eps(params):
  model = make_model(variational=False)
  shapes = jax.eval_shape(lambda key: init_params(key, model, SEQ_LEN), jax.random.key(8))
  assert "logvar" not in shapes["core"]
  params = dict(params, core={k: v for k, v in params["core"].items() if k != "logvar"})

  x = windows(jax.random.key(9), 3, 3)
  mask = jnp.ones((3, SEQ_LEN))
  out = forward(model, params, x, mask, "source", jnp.ones((3, LATENT)))
  np.testing.assert_array_equal(out["z"], out["mu"])
  np.testing.assert_array_equal(out["logvar"], np.zeros((3, LATENT)))


def test_decode_matches_step_loop(model, params):
  z = jax.random.normal(jax.random.key(10), (4, LATENT))
  x_hat = decode(model, params, z, "source")

  u_hat = numpy_decode(params, z)
  adaptor = params["adaptors"]["source"]["decode"]
  expected = u_hat @ np.asarray(adaptor["kernel"]) + np.asarray(adaptor["bias"])
  np.testing.assert_allclose(x_hat, expected, rtol=1e-4, atol=1e-5)


def test_teacher_forcing_feeds_true_inputs(params):
  # Teacher forcing changes no parameter, so the fixture's parameters serve.
  model = make_model(teacher_forcing=True)
  z = jax.random.normal(jax.random.key(12), (4, LATENT))
  x = windows(jax.random.key(13), 4, 3)

  x_hat = decode(model, params, z, "source", teacher=x)

  input_adaptor = params["adaptors"]["source"]["encode"]
  u_teacher = (np.asarray(x) @ np.asarray(input_adaptor["kernel"])
               + np.asarray(input_adaptor["bias"]))
  output_adaptor = params["adaptors"]["source"]["decode"]
  u_hat = numpy_decode(params, z, u_teacher)
  expected = u_hat @ np.asarray(output_adaptor["kernel"]) + np.asarray(output_adaptor["bias"])
  np.testing.assert_allclose(x_hat, expected, rtol=1e-4, atol=1e-5)

  free_running = decode(model, params, z, "source")
  assert not np.allclose(x_hat, free_running)


def test_teacher_ignored_when_forcing_off(model, params):
  z = jax.random.normal(jax.random.key(14), (2, LATENT))
  x = windows(jax.random.key(15), 2, 3)
  with_teacher = decode(model, params, z, "source", teacher=x)
  without = decode(model, params, z, "source")
  np.testing.assert_array_equal(with_teacher, without)


def test_unknown_domain_raises(model, params):
  x = windows(jax.random.key(16), 2, 3)
  with pytest.raises(ValueError, match="Unknown domain 'sink'"):
    encode(model, params, x, jnp.ones((2, SEQ_LEN)), "sink")


def test_wrong_width_raises(model, params):
  x = windows(jax.random.key(17), 2, 5)
  with pytest.raises(ValueError, match="expected 3"):
    encode(model, params, x, jnp.ones((2, SEQ_LEN)), "source")


def reference_lstm(inputs, input_kernel, recurrent_kernel, bias, c, h, length):
  """Run the LSTM with a plain scan, so autodiff gives the reference gradient."""

  def step(carry, inputs_t):
    c, h = carry
    gates = h @ recurrent_kernel + bias
    if inputs_t is not None:
      gates = gates + inputs_t @ input_kernel
    c, h = lstm._cell(gates, c)
    return (c, h), h

  return jax.lax.scan(step, (c, h), inputs, length=length)[1]


# The encoder's case (inputs, one bias) and the autoregressive decoder's (no inputs, a
# bias per row), then inputs with a bias per row as in the teacher-forced decoder.
@pytest.mark.parametrize("with_inputs, per_row_bias", [(True, False), (False, True), (True, True)])
def test_lstm_scan_matches_autodiff(with_inputs, per_row_bias):
  steps, n, features, hidden = 4, 3, 2, 5
  keys = jax.random.split(jax.random.key(20), 7)
  inputs = jax.random.normal(keys[0], (steps, n, features)) if with_inputs else None
  input_kernel = 0.5 * jax.random.normal(keys[1], (features, 4 * hidden)) if with_inputs else None
  recurrent_kernel = 0.5 * jax.random.normal(keys[2], (hidden, 4 * hidden))
  bias_shape = (n, 4 * hidden) if per_row_bias else (4 * hidden,)
  bias = jax.random.normal(keys[3], bias_shape)
  c = jax.random.normal(keys[4], (n, hidden))
  h = jax.random.normal(keys[5], (n, hidden))
  weights = jax.random.normal(keys[6], (steps, n, hidden))
  args = (inputs, input_kernel, recurrent_kernel, bias, c, h)

  argnums = tuple(i for i, value in enumerate(args) if value is not None)

  def value_and_grads(run):
    loss = lambda *values: jnp.sum(jnp.sin(run(*values, steps)) * weights)
    return jax.jit(lambda *values: (run(*values, steps), jax.grad(loss, argnums)(*values)))

  got, got_grads = value_and_grads(lstm.lstm_scan)(*args)
  expected, expected_grads = value_and_grads(reference_lstm)(*args)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  for index, got_grad, expected_grad in zip(argnums, got_grads, expected_grads):
    np.testing.assert_allclose(got_grad, expected_grad, rtol=1e-4, atol=1e-5, err_msg=str(index))


def test_recurrent_blocks_orthogonal(params):
  kernel = np.asarray(params["core"]["encoder"]["recurrent_kernel"])
  hidden = kernel.shape[0]
  for gate in range(4):
    block = kernel[:, gate * hidden:(gate + 1) * hidden]
    np.testing.assert_allclose(block.T @ block, np.eye(hidden), atol=1e-5)
