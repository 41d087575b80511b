"""Fine-tuning an inpainting remover on exported pairs (one accelerate loop; imports no project code)."""
